"""Issue 23, Tables: every command's table fits an 80-column terminal, no number cut, no
name a user types shortened; piped output is plain; the footer's convention is at most
two lines (``--explain``: the full text); a picture name on -o points to --plot;
``check --format github`` prints workflow annotations."""

from __future__ import annotations

import contextlib
import io
import json
import re
import textwrap

import pytest
from rich.cells import cell_len

from cnnscope.cli.main import main

BOX = set("┏┳┓━┃│┡╇┩├┼┤└┴┘─")
# a number as a table shows it: 1,814,073,344  0.60x  12.5%  3x224x224  -1,000 (-75.34%)
NUMBER = re.compile(r"[-+]?\d[\d,.]*(?:x\d[\d,.]*)*[%x]?")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# One run per command line, width and kind of output, shared by the tests that read it:
# the output is a function of those alone (the environment is set the same way each
# time), and `cnnscope zoo` alone costs ~1.2 s a run.
_RUNS: dict = {}


def _run(monkeypatch, argv, *, terminal=True, columns=80):
    key = (tuple(str(a) for a in argv), terminal, columns)
    if key not in _RUNS:
        monkeypatch.setenv("COLUMNS", str(columns))
        monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.setenv("TERM", "dumb")  # no colours: the text alone
        out, err = (_Terminal() if terminal else io.StringIO()), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
        _RUNS[key] = code, out.getvalue(), err.getvalue()
    return _RUNS[key]


@pytest.fixture(scope="module", autouse=True)
def computed_once():
    """The API results the commands render, computed once for this file: the subject here
    is how a result is laid out, and `cnnscope zoo` analyses every zoo model (~2.5 s) for
    each of its five layouts, `memory resnet18` plans a training step for each of three,
    `params --counter fvcore` runs fvcore on real tensors for each of four.
    The results are frozen dataclasses; the CLI still calls through ``cnnscope.api``."""
    import cnnscope.api as api

    memo: dict = {}

    def once(function):
        def call(*args, **kwargs):
            key = (function.__name__, args, tuple(sorted(kwargs.items())))
            try:
                hash(key)
            except TypeError:
                return function(*args, **kwargs)
            if key not in memo:
                memo[key] = function(*args, **kwargs)
            return memo[key]

        return call

    with pytest.MonkeyPatch.context() as mp:
        for name in ("zoo_table", "plan_memory", "fvcore_check"):
            mp.setattr(api, name, once(getattr(api, name)))
        yield


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if BOX & set(line)]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split("[│┃]", line)[1:-1]]


def _numbers(lines) -> set[str]:
    return {m.group(0).rstrip(".,") for line in lines for c in _cells(line)
            for m in NUMBER.finditer(c)}


@pytest.fixture(scope="module")
def locks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("locks")
    assert main(["snapshot", "lenet5", "resnet18", "-o", str(tmp / "ok.lock.json")]) == 0
    text = json.dumps(json.loads((tmp / "ok.lock.json").read_text()))
    # drift: the first two recorded MACs gain a leading 1 (LeNet-5's and ResNet-18's)
    (tmp / "drift.lock.json").write_text(text.replace('"macs": ', '"macs": 1', 2))
    return tmp


COMMANDS = {
    "zoo": ["zoo"],
    "params_fvcore": ["params", "resnet18", "--counter", "fvcore"],
    "rf": ["rf", "googlenet"],
    "compare": ["compare", "resnet18", "googlenet", "mobilenet_v2", "densenet121"],
    "spec": ["spec", "googlenet"],
    "shape": ["shape", "resnet18"],
    "memory": ["memory", "resnet18"],
    "check_drift": ["check", "{drift}"],
}


def _argv(name, locks):
    return [a.format(drift=locks / "drift.lock.json") for a in COMMANDS[name]]


@pytest.mark.parametrize("name", COMMANDS)
def test_fits_80_columns_and_cuts_no_number(monkeypatch, locks, name):
    argv = _argv(name, locks)
    code, text, err = _run(monkeypatch, argv)
    assert code in (0, 1), err
    table = _table_lines(text)
    assert table, text
    assert max(cell_len(line) for line in table) <= 80, "\n".join(
        line for line in table if cell_len(line) > 80)
    # No number cut: every number in the fitted table is one the whole table shows (a
    # cut or folded number would be a fragment, "1,814,07" or "3x224x2").
    _, whole, _ = _run(monkeypatch, argv, columns=2000)
    assert _numbers(table) <= _numbers(_table_lines(whole))
    # The convention under a table: at most two lines at 80 columns.
    brief = [line for line in text.splitlines() if line.endswith("(--explain: in full)")]
    if name not in ("spec", "check_drift"):
        assert len(brief) == 1 and len(textwrap.wrap(brief[0], 80)) <= 2
        assert "Convention:" not in text


@pytest.mark.parametrize("name", COMMANDS)
def test_piped_output_is_plain_and_fits(monkeypatch, locks, name):
    code, text, err = _run(monkeypatch, _argv(name, locks), terminal=False)
    assert code in (0, 1), err
    assert not BOX & set(text) and "\x1b" not in text
    assert max(cell_len(line) for line in text.splitlines()) <= 80  # the footer wrapped too


def _json(monkeypatch, argv):
    code, text, err = _run(monkeypatch, argv + ["--format", "json"], terminal=False)
    assert code in (0, 1), err
    return json.loads(text)


def test_zoo_names_whole(monkeypatch):
    _, text, _ = _run(monkeypatch, ["zoo"])
    shown = {_cells(line)[0] for line in _table_lines(text) if line.startswith("│")}
    names = {m["name"] for m in _json(monkeypatch, ["zoo"])["models"]}
    assert names <= shown and "…" not in text


def test_fvcore_numbers_match_json(monkeypatch):
    argv = ["params", "resnet18", "--counter", "fvcore"]
    _, text, _ = _run(monkeypatch, argv)
    # one line per layer, then lines of folded causes (an empty name cell), then the total
    rows = [_cells(line) for line in _table_lines(text) if line.startswith("│")]
    rows = [cells for cells in rows if cells[0]]
    layers = _json(monkeypatch, argv)["layers"]
    assert len(rows) == len(layers) + 1
    for cells, layer in zip(rows, layers):
        name = cells[0]
        assert name == layer["name"] or (  # shortened in the middle, the leaf kept
            "…" in name and layer["name"].endswith(name.split("…")[1])
            and layer["name"].startswith(name.split("…")[0]))
        assert cells[1:4] == [f"{layer['cnnscope_macs']:,}", f"{layer['fvcore']:,}",
                              f"{layer['difference']:+,}" if layer["difference"] else "0"]


def test_check_drift_numbers_match_json(monkeypatch, locks):
    argv = ["check", str(locks / "drift.lock.json")]
    _, text, _ = _run(monkeypatch, argv)
    rows = [_cells(line) for line in _table_lines(text) if line.startswith("│")]
    drifts = _json(monkeypatch, argv)["drifts"]
    assert len(rows) == len(drifts) == 2
    for cells, d in zip(rows, drifts):
        assert cells[0] == d["model"]
        assert cells[2:4] == [f"{d['old']:,}", f"{d['new']:,}"]
        assert cells[4].startswith(f"{d['new'] - d['old']:+,}")


def test_rf_type_names_whole_and_fields_match_json(monkeypatch):
    _, text, _ = _run(monkeypatch, ["rf", "googlenet"])
    body = [_cells(line) for line in _table_lines(text) if line.startswith("│")]
    types = {layer["type"] for layer in _json(monkeypatch, ["rf", "googlenet"])["layers"]}
    assert "LocalResponseNorm" in {c[1] for c in body} <= types
    fields = {str(layer["receptive_field"][0]) for layer
              in _json(monkeypatch, ["rf", "googlenet"])["layers"]
              if layer["receptive_field"][0] is not None}
    assert {c[2] for c in body} - {"-"} <= fields


def test_compare_params_and_model_names_whole(monkeypatch):
    argv = COMMANDS["compare"]
    _, text, _ = _run(monkeypatch, argv)
    for m in _json(monkeypatch, argv)["models"]:
        assert m["model"] in text and f"{m['totals']['params']:,}" in text


def test_memory_bytes_match_json(monkeypatch):
    _, text, _ = _run(monkeypatch, ["memory", "resnet18"])
    numbers = _numbers(_table_lines(text))
    plan = _json(monkeypatch, ["memory", "resnet18"])
    assert {f"{v:,}" for v in plan["breakdown"].values()} <= numbers
    assert f"{plan['peak_bytes']:,}" in numbers


def test_explain_prints_the_full_convention(monkeypatch):
    _, text, _ = _run(monkeypatch, ["compare", "resnet18", "googlenet", "--explain"])
    assert "Convention: params: trainable + frozen nn.Parameters" in text
    assert "(--explain: in full)" not in text


def test_wide_shows_every_column(monkeypatch):
    _, text, _ = _run(monkeypatch, ["zoo", "resnet*", "--wide"], columns=60)
    header = _cells(_table_lines(text)[1])
    assert header == ["name", "family", "year", "dataset", "input", "params", "MACs"]
    _, text, _ = _run(monkeypatch, ["zoo", "resnet*"], columns=60)
    assert "left out to fit 60 columns: year, dataset" in text


def _bench_result():
    from cnnscope.benchmark.records import BenchResult, BenchRow, MatmulCeiling

    ok = BenchRow(model="wide_resnet50_2", device="cuda:0", device_name="GPU", batch=256,
                  dtype="bf16", mode="train", input_size=(3, 224, 224), samples=20,
                  median_ms=123.4567, p10_ms=120.0, p25_ms=121.0, p75_ms=125.0, p90_ms=126.0,
                  fwd_median_ms=40.5, bwd_median_ms=80.25, throughput=2073.6,
                  macs=11_430_000_000 * 256, achieved_tflops=142.3, ceiling_tflops=700.0,
                  ceiling_fraction=142.3 / 700.0, peak_memory_bytes=37 * 2**30)
    ceiling = MatmulCeiling(device_name="GPU", dtype="bf16", tflops=700.0, n=8192,
                            measured_at="2026-01-01T00:00:00+00:00", torch_version="x")
    return BenchResult(env={"device": "cuda:0", "device_name": "GPU", "device_type": "cuda",
                            "torch": "x"}, settings={}, rows=[ok], ceilings={"bf16": ceiling},
                       planned=1)


def test_bench_table_fits_80_by_dropping_columns_in_order():
    from rich.console import Console

    from cnnscope.report.render import render_table

    con = Console(width=80, file=io.StringIO(), color_system=None, force_terminal=True)
    render_table(_bench_result(), con)
    text = con.file.getvalue()
    table = _table_lines(text)
    assert max(cell_len(line) for line in table) <= 80
    cells = _cells(next(line for line in table if line.startswith("│")))
    # kept whatever the width: the model whole, the batch, the median, img/s, the status
    assert cells[:2] == ["wide_resnet50_2", "256"]
    assert "123.5" in cells and "2,074" in cells and cells[-1] == "ok"
    # left out first: n, then the train split (fwd ms, bwd ms), then the IQR, ...
    note = next(line for line in text.splitlines() if line.startswith("left out"))
    left = note.split(": ", 1)[1].split(" (")[0].split(", ")
    order = ["n", "fwd ms", "bwd ms", "IQR ms", "peak memory", "of ceiling", "TFLOP/s",
             "dtype", "mode"]
    assert set(left) == set(order[:len(left)])
    con = Console(width=80, file=io.StringIO(), color_system=None, force_terminal=True)
    render_table(_bench_result(), con, wide=True)
    header = _cells(_table_lines(con.file.getvalue())[1])
    assert {"n", "fwd ms", "bwd ms", "IQR ms", "peak memory", "of ceiling"} <= set(header)


def test_bench_footer_is_brief_unless_explained():
    from rich.console import Console

    from cnnscope.benchmark.records import FLOP_BASIS
    from cnnscope.report.render import render_table

    def footer(explain):
        con = Console(width=80, file=io.StringIO(), color_system=None, force_terminal=True)
        render_table(_bench_result(), con, explain=explain)
        return con.file.getvalue()

    brief, full = footer(False), footer(True)
    assert "(--explain: in full)" in brief and "matmul-equivalent" not in brief
    assert "matmul-equivalent" in FLOP_BASIS and "matmul-equivalent" in full
    assert "(--explain: in full)" not in full
    # the environment and the ceiling stay: they say what the figures were measured on
    assert "dense matmul ceiling bf16" in brief


@pytest.mark.parametrize("name", ["table.png", "x.SVG", "plot.jpeg", "a.pdf"])
def test_a_picture_name_on_o_points_to_plot(run_main, one_line_error, tmp_path, name):
    res = run_main("params", "lenet5", "-o", tmp_path / name)
    line = one_line_error(res)
    assert "--plot" in line and name in line
    assert not (tmp_path / name).exists()


def test_check_github_annotations(monkeypatch, locks):
    code, text, _ = _run(monkeypatch, ["check", locks / "drift.lock.json", "--format", "github"],
                         terminal=False)
    assert code == 1
    lines = text.splitlines()
    assert len(lines) == 2  # one annotation per drifted model
    where = str(locks / "drift.lock.json").replace(":", "%3A").replace(",", "%2C")
    # LeNet-5's 327,256 MACs (LeCun et al. 1998) recorded as 1,327,256: 1,000,000 fewer now
    assert lines[0] == (f"::error file={where},title=cnnscope check%3A lenet5 drifted "
                        "(1 difference)::macs: 1,327,256 -> 327,256 (-1,000,000 (-75.34%25))"
                        "%0Aif intended, regenerate the lock with cnnscope snapshot")
    assert lines[1].startswith(f"::error file={where},title=cnnscope check%3A resnet18 drifted")
    code, text, _ = _run(monkeypatch, ["check", locks / "ok.lock.json", "-f", "github"],
                         terminal=False)
    assert code == 0 and text.startswith("::notice ") and "OK%3A" not in text


def test_github_escaping_of_properties_and_data():
    from cnnscope.report.files import _github_data, _github_property

    assert _github_data("50% done\r\nnext: a,b") == "50%25 done%0D%0Anext: a,b"
    assert _github_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_check_github_to_a_json_name_is_refused_before_checking(run_main, one_line_error, locks,
                                                                tmp_path):
    res = run_main("check", locks / "drift.lock.json", "-f", "github", "-o", tmp_path / "a.json")
    assert "--format is github" in one_line_error(res)
    assert not (tmp_path / "a.json").exists()
