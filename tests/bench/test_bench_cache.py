"""The ceiling caches: nothing planted in them is followed or trusted (issue 21, items 2-3).

Each attack of the issue, then the class: random cache contents (Hypothesis) never give a
ceiling outside what the machine can physically do, never raise, never reach the table.
"""

import json
import os
import stat

import pytest
import torch

from cnnscope.benchmark import bandwidth as bandwidth_mod
from cnnscope.benchmark import cache
from cnnscope.benchmark import ceiling as ceiling_mod
from cnnscope.benchmark.env import device_name

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CPU = torch.device("cpu")
FRESH = ceiling_mod.Measured(tflops=0.05, n=512, spread=0.01, causes=(), load_average=0.2,
                             other_cpu=0.0)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(folder))
    monkeypatch.setattr(ceiling_mod, "measure", lambda *a, **k: FRESH)  # no real timing
    ceiling_mod.clear_run_cache()
    bandwidth_mod.clear_run_cache()
    cache._warned.clear()
    yield
    ceiling_mod.clear_run_cache()
    bandwidth_mod.clear_run_cache()


def good_entry(**over):
    entry = dict(device_name=device_name(CPU), dtype="fp32", tflops=0.04, n=1024,
                 measured_at="2026-12-01T10:00:00+00:00", torch_version=torch.__version__,
                 spread=0.02, stable=True, load_average=0.3, other_cpu=0.0, threads=2)
    entry.update(over)
    return entry


def plant(entry) -> None:
    path = ceiling_mod.cache_path()
    path.write_text(json.dumps({ceiling_mod.device_key(CPU): {"fp32": entry}}))


def test_a_valid_stable_entry_is_used():
    plant(good_entry())
    c = ceiling_mod.matmul_ceiling(CPU, "fp32")
    assert c.cached and c.tflops == 0.04 and c.n == 1024 and c.spread == 0.02


@pytest.mark.parametrize("bad", [
    {"tflops": 1e-300}, {"tflops": 1e300}, {"tflops": -1.0}, {"tflops": True}, {"tflops": "0.04"},
    {"n": True}, {"n": 1.5}, {"n": 0}, {"n": 10 ** 30}, {"spread": 0.5}, {"stable": False},
    {"stable": 1}, {"measured_at": "\x1b]0;pwned\x07"}, {"measured_at": "yesterday"},
    {"device_name": "another CPU"}, {"torch_version": "1.0"}, {"load_average": float("nan")},
    {"dtype": "bf16"},
])
def test_a_damaged_or_foreign_entry_is_measured_again(bad):
    plant(good_entry(**bad))
    c = ceiling_mod.matmul_ceiling(CPU, "fp32")
    assert not c.cached and c.tflops == FRESH.tflops


def test_an_entry_without_its_stability_record_is_measured_again():
    old = good_entry()
    for k in ("spread", "stable"):
        old.pop(k)
    plant(old)
    assert not ceiling_mod.matmul_ceiling(CPU, "fp32").cached


def test_an_unstable_measurement_is_not_cached(monkeypatch):
    monkeypatch.setattr(ceiling_mod, "measure", lambda *a, **k: ceiling_mod.Measured(
        tflops=0.01, n=512, spread=0.4, causes=("other processes used 80%",),
        load_average=3.0, other_cpu=0.8))
    c = ceiling_mod.matmul_ceiling(CPU, "fp32")
    assert c.stable is False and c.causes
    assert not ceiling_mod.cache_path().exists()


def test_a_stable_measurement_is_cached_with_its_spread_and_load():
    ceiling_mod.matmul_ceiling(CPU, "fp32")
    stored = json.loads(ceiling_mod.cache_path().read_text())[ceiling_mod.device_key(CPU)]["fp32"]
    assert stored["stable"] is True and stored["spread"] == 0.01 and stored["load_average"] == 0.2
    assert "causes" not in stored and "cached" not in stored


def test_the_key_changes_with_the_thread_count():
    from cnnscope.benchmark.runner import torch_threads

    with torch_threads(1):
        one = ceiling_mod.device_key(CPU)
    with torch_threads(2):
        two = ceiling_mod.device_key(CPU)
    assert one != two and "torch " + torch.__version__ in one


def test_a_planted_link_at_the_cache_file_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.symlink(victim, ceiling_mod.cache_path())
    c = ceiling_mod.matmul_ceiling(CPU, "fp32")
    assert not c.cached  # the link was not read either
    assert victim.read_text() == "precious\n"
    assert not ceiling_mod.cache_path().is_symlink() and ceiling_mod.cache_path().is_file()


def test_a_planted_link_to_a_valid_cache_is_not_read(tmp_path):
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({ceiling_mod.device_key(CPU): {"fp32": good_entry()}}))
    os.symlink(elsewhere, ceiling_mod.cache_path())
    assert not ceiling_mod.matmul_ceiling(CPU, "fp32").cached


def test_no_temporary_file_with_a_guessable_name(tmp_path, monkeypatch):
    """The old writer used .matmul_ceiling.json.<pid>.tmp; a link planted there must not
    be written through."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    folder = ceiling_mod.cache_path().parent
    os.symlink(victim, folder / f".{ceiling_mod.CACHE_FILE}.{os.getpid()}.tmp")
    ceiling_mod.matmul_ceiling(CPU, "fp32")
    assert victim.read_text() == "precious\n"
    assert json.loads(ceiling_mod.cache_path().read_text())


def test_a_fifo_at_the_cache_file_neither_blocks_nor_is_read():
    os.mkfifo(ceiling_mod.cache_path())
    c = ceiling_mod.matmul_ceiling(CPU, "fp32")  # would hang on open() without O_NONBLOCK
    assert not c.cached


def test_a_world_writable_folder_without_sticky_bit_is_refused(capsys, tmp_path):
    folder = ceiling_mod.cache_path().parent
    os.chmod(folder, 0o777)
    plant(good_entry())
    c = ceiling_mod.matmul_ceiling(CPU, "fp32")
    assert not c.cached  # not read
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "writable by every user" in err and "without caching" in err
    assert json.loads(ceiling_mod.cache_path().read_text())[ceiling_mod.device_key(CPU)][
        "fp32"]["tflops"] == 0.04  # not written either: the planted file is as it was
    os.chmod(folder, 0o777 | stat.S_ISVTX)  # /tmp-like: sticky is fine
    ceiling_mod.clear_run_cache()
    assert ceiling_mod.matmul_ceiling(CPU, "fp32").cached


def test_a_folder_of_another_user_is_refused(monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(ceiling_mod.cache_path().parent).st_uid + 1)
    plant(good_entry())
    assert not ceiling_mod.matmul_ceiling(CPU, "fp32").cached
    assert "belongs to another user" in capsys.readouterr().err


def test_a_missing_folder_is_created_private(tmp_path, monkeypatch):
    folder = tmp_path / "new" / "cache"
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(folder))
    ceiling_mod.matmul_ceiling(CPU, "fp32")
    assert stat.S_IMODE(os.stat(folder).st_mode) & 0o077 == 0
    assert (folder / ceiling_mod.CACHE_FILE).is_file()


def test_bandwidth_cache_checks_its_numbers(monkeypatch):
    monkeypatch.setattr(bandwidth_mod, "measure", lambda *a, **k: (5e9, 1 << 20, 0.01, (), 0.1, 0.0))
    key = ceiling_mod.device_key(CPU)
    entry = dict(device_name=device_name(CPU), bytes_per_s=1e300, nbytes=1 << 20, spread=0.01,
                 stable=True, measured_at="2026-12-01T10:00:00+00:00",
                 torch_version=torch.__version__)
    bandwidth_mod.cache_path().write_text(json.dumps({key: entry}))
    bw = bandwidth_mod.copy_bandwidth(CPU)
    assert not bw.cached and bw.bytes_per_s == 5e9
    bandwidth_mod.clear_run_cache()
    assert bandwidth_mod.copy_bandwidth(CPU).cached  # the stable fresh figure was stored


def test_number_refuses_bools_strings_and_non_finite():
    assert cache.number(True, 0, 10) is None and cache.number("1", 0, 10) is None
    assert cache.number(float("inf"), 0, 1e400) is None and cache.number(float("nan"), 0, 1) is None
    assert cache.number(10 ** 400, 0, 1e300) is None  # a huge int compares, and is out of range
    assert cache.number(2.0, 0, 10, integer=True) is None and cache.number(2, 0, 10, integer=True) == 2


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10 ** 40, max_value=10 ** 40)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children,
                                                                      max_size=6),
    max_leaves=20)
FIELDS = st.fixed_dictionaries({}, optional={
    k: JSON | st.just(v) for k, v in good_entry().items()})


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entry=FIELDS | JSON)
def test_random_cache_contents_never_give_an_impossible_ceiling(entry):
    ceiling_mod.clear_run_cache()
    text = json.dumps({ceiling_mod.device_key(CPU): {"fp32": entry}}, allow_nan=True)
    ceiling_mod.cache_path().write_text(text)
    c = ceiling_mod.matmul_ceiling(CPU, "fp32")
    if c.cached:
        assert type(c.tflops) is float and ceiling_mod.MIN_TFLOPS <= c.tflops <= \
            ceiling_mod.tflops_bound(CPU)
        assert type(c.n) is int and 1 <= c.n <= 1 << 16
        assert c.measured_at.isprintable() and entry.get("stable") is True
    else:
        assert c.tflops == FRESH.tflops


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_random_bytes_in_the_cache_file_are_ignored(raw):
    ceiling_mod.clear_run_cache()
    ceiling_mod.cache_path().write_bytes(raw)
    assert ceiling_mod.matmul_ceiling(CPU, "fp32").tflops > 0
