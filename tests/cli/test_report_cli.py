"""``cnnscope report MODEL... -o DIR``: per-model files and the comparison, atomically."""

import json
import os

import pandas as pd
import pytest

import cnnscope.fileio as report_io

# LeNet-5 (LeCun et al. 1998) as in the zoo: C1 6@5x5 (1 input map) = 6*25 + 6.
LENET_C1 = 6 * 1 * 5 * 5 + 6


def test_writes_every_file(run, tmp_path):
    out = tmp_path / "reports" / "nested"  # created if missing
    result = run("report", "lenet5", "nin", "-o", str(out))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([
        "lenet5.layers.csv", "lenet5.totals.json", "lenet5.md",
        "nin.layers.csv", "nin.totals.json", "nin.md",
        "compare.csv", "compare.json", "compare.md"])
    layers = pd.read_csv(out / "lenet5.layers.csv")
    totals = json.loads((out / "lenet5.totals.json").read_text())
    assert layers["params"].sum() == totals["totals"]["params"]
    assert layers.loc[0, "params"] == LENET_C1
    assert {"depth", "peak_activation_bytes", "receptive_field", "param_bytes"} <= set(totals)
    md = (out / "lenet5.md").read_text()
    assert md.startswith("# lenet5") and "| layer |" in md
    cmp = pd.read_csv(out / "compare.csv")
    assert list(cmp["model"]) == ["lenet5", "nin"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_single_model_has_no_comparison(run, tmp_path):
    result = run("report", "lenet5", "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "compare.csv").exists()
    assert (tmp_path / "lenet5.md").exists()


def test_interrupted_write_leaves_no_half_written_file(run, tmp_path, monkeypatch):
    # The rename of the third file fails: the first two are whole, the third is absent,
    # and no temp file is left behind.
    calls = {"n": 0}
    real_replace = os.replace

    def flaky_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(report_io.os, "replace", flaky_replace)
    result = run("report", "lenet5", "-o", str(tmp_path))
    assert result.exit_code == 130
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["lenet5.layers.csv", "lenet5.totals.json"]
    json.loads((tmp_path / "lenet5.totals.json").read_text())  # whole, parseable


def test_output_that_is_a_file_is_an_error(run, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    result = run("report", "lenet5", "-o", str(f))
    assert result.exit_code == 2
    assert "is a file" in result.stderr and "Traceback" not in result.output


def test_unknown_model_fails_before_writing(run, tmp_path):
    out = tmp_path / "r"
    result = run("report", "lenet5", "nosuchnet", "-o", str(out))
    assert result.exit_code == 2
    assert not out.exists()


def test_plot_in_report(run, tmp_path):
    pytest.importorskip("matplotlib")
    result = run("report", "lenet5", "nin", "-o", str(tmp_path), "--plot")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "compare.png").stat().st_size > 5_000
