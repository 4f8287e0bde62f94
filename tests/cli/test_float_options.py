"""Every float option is finite and in range, checked before anything starts: NaN and
infinities used to print a NaN prediction (--link-gbps nan) or fail only after the ranks
had started (--bucket-mb inf)."""

import math

import pytest

from cnnscope import validate
from cnnscope.errors import CnnscopeError, InvalidOptionError

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

BENCH_FLOATS = ["--min-time", "--bucket-mb", "--link-gbps", "--link-latency-us"]
# What each option means, written out here: (lowest, lowest allowed?, highest).
MEANING = {
    "--min-time": (0.0, False, 24 * 3600.0),        # seconds per row, up to a day
    "--bucket-mb": (0.0, False, float(1024 * 1024)),  # MiB, up to 1 TiB
    "--link-gbps": (0.0, False, 1e6),               # Gbit/s, up to 1 Pbit/s
    "--link-latency-us": (0.0, True, 1e9),          # us, up to 1000 s; 0 is no latency
    "--rtol": (0.0, True, 1e6),
}
NASTY = ["nan", "-nan", "inf", "-inf", "1e309", "-1e309", "0", "-0.0", "-1", "1e300", "5e-324"]


def allowed(flag, x):
    low, low_ok, high = MEANING[flag]
    return math.isfinite(x) and (x >= low if low_ok else x > low) and x <= high


def test_every_float_option_of_the_cli_has_a_range():
    """A float option added to a command without a range here fails this test."""
    import inspect
    import typing

    from cnnscope.cli.main import app

    floats = set()
    for command in app.registered_commands:
        hints = typing.get_type_hints(command.callback)
        for name, param in inspect.signature(command.callback).parameters.items():
            if float in (hints.get(name), *typing.get_args(hints.get(name))):
                floats.add(param.default.param_decls[0])
    assert floats and floats <= set(validate.FLOAT_OPTIONS)
    assert set(MEANING) == set(validate.FLOAT_OPTIONS)


@settings(max_examples=200, deadline=None)
@given(flag=st.sampled_from(sorted(MEANING)), x=st.floats(allow_nan=True, allow_infinity=True))
def test_property_the_validator_takes_exactly_the_meaningful_values(flag, x):
    if allowed(flag, x):
        assert validate.option(flag, x) == x
    else:
        with pytest.raises(InvalidOptionError, match=flag):
            validate.option(flag, x)


@pytest.fixture()
def before_anything(monkeypatch, tmp_path):
    """Resolving a model is the first work bench does after its options: reaching it
    means every option was accepted."""
    from cnnscope.api import sweep

    def reached(*args, **kwargs):
        raise CnnscopeError("REACHED the models")

    monkeypatch.setattr(sweep, "resolve_all", reached)
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(key, raising=False)


def bench_with(run, flag, text):
    extra = ["--ddp", "2"] if flag in ("--bucket-mb", "--link-gbps", "--link-latency-us") else []
    return run("bench", "lenet5", "--device", "cpu", *extra, f"{flag}={text}")


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("flag", BENCH_FLOATS)
def test_bench_float_options_are_checked_before_anything_starts(run, before_anything, flag, text):
    result = bench_with(run, flag, text)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and result.stdout == "" and len(lines) == 1, result.output
    if allowed(flag, float(text)):
        assert "REACHED the models" in lines[0]
    else:
        assert lines[0].startswith(f"cnnscope: error: {flag} ") and "REACHED" not in lines[0]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(flag=st.sampled_from(BENCH_FLOATS), x=st.floats(allow_nan=True, allow_infinity=True))
def test_property_random_floats_through_the_command_line(run, before_anything, flag, x):
    result = bench_with(run, flag, repr(x))
    line = result.stderr.strip()
    assert result.exit_code == 2 and "\n" not in line
    assert ("REACHED" in line) == allowed(flag, x), line


@pytest.mark.parametrize("rtol", ["inf", "nan", "macs=inf", "flops=nan", "params=-inf", "-1",
                                  "macs=1e309", "2e6"])
def test_check_rtol_is_finite_and_in_range(run, tmp_path, rtol):
    lock = tmp_path / "l.json"
    assert run("snapshot", "lenet5", "-o", str(lock)).exit_code == 0
    result = run("check", str(lock), "--rtol", rtol)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("cnnscope: error: --rtol ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_rtol_through_the_api_too(tmp_path, run):
    from cnnscope.api import check_lock

    lock = tmp_path / "l.json"
    assert run("snapshot", "lenet5", "-o", str(lock)).exit_code == 0
    with pytest.raises(InvalidOptionError, match="--rtol nan is not a finite number"):
        check_lock(lock, {"macs": float("nan")})
    assert check_lock(lock, {"macs": 0.5}).ok
