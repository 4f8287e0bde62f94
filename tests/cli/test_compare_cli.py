"""``cnnscope compare``: formats, ratios, plot, bad input."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "custom_model.py")


def tiny_params(width, num_classes=10):
    # TinyNet: conv3x3 3->w (no bias) + BN(w), conv3x3 w->2w (no bias) + BN(2w), fc 2w->classes.
    return (3 * width * 9 + 2 * width + width * 2 * width * 9 + 2 * 2 * width
            + 2 * width * num_classes + num_classes)


def test_table_has_one_column_per_model_and_the_ratio_line(run):
    result = run("compare", "vgg16", "googlenet")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "vgg16" in out and "googlenet" in out
    # 6,998,552 / 138,357,544 params (torchvision's published counts) and 1.58 / 15.47
    # GMACs give the example line.
    assert "googlenet: 0.05x params, 0.10x MACs" in out
    assert "of vgg16" in out
    for label in ("params", "param bytes", "MACs", "FLOPs", "depth", "receptive field",
                  "peak activations"):
        assert label in out


def test_json_has_params_totals_keys_per_model(run):
    result = run("compare", "lenet5", "nin", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    params_json = json.loads(run("params", "lenet5", "--format", "json").stdout)
    assert [m["model"] for m in data["models"]] == ["lenet5", "nin"]
    for m in data["models"]:
        assert set(m["totals"]) == set(params_json["totals"])
    assert data["models"][0]["totals"] == params_json["totals"]
    assert data["reference"] == "lenet5"


def test_csv_is_one_row_per_model_with_exact_ints_and_bytes_at_dtype(run):
    result = run("compare", "lenet5", "nin", "-f", "csv", "--dtype", "fp16")
    assert result.exit_code == 0, result.output
    import io

    frame = pd.read_csv(io.StringIO(result.stdout))
    assert list(frame["model"]) == ["lenet5", "nin"]
    assert (frame["param_bytes"] == frame["params"] * 2).all()
    assert frame.loc[0, "params_ratio"] == 1.0


def test_markdown_and_output_file(run, tmp_path):
    out = tmp_path / "cmp.md"
    result = run("compare", "lenet5", "nin", "-f", "md", "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("## compare") and "| lenet5 | nin |" in text


def test_user_model_with_targeted_arg(run):
    result = run("compare", "lenet5", f"{EXAMPLE}:build", "--arg", f"{EXAMPLE}:build:width=32",
                 "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["models"][1]["model"] == "custom_model:build"
    assert data["models"][1]["totals"]["params"] == tiny_params(32)
    assert data["models"][1]["input_size"] == [3, 32, 32]


def test_unknown_name_among_several_fails_before_any_work(run, one_line_error):
    line = one_line_error(run("compare", "vgg16", "nosuchnet"))
    assert "unknown model 'nosuchnet'" in line


def test_bad_dtype_and_bad_arg(run, one_line_error):
    assert "unknown dtype" in one_line_error(run("compare", "lenet5", "nin", "--dtype", "float7"))
    assert "malformed --arg" in one_line_error(run("compare", "lenet5", "nin", "--arg", "width"))
    assert "names a model that is not given" in one_line_error(
        run("compare", "lenet5", "nin", "--arg", "vgg16:num_classes=3"))


def test_missing_user_file_names_the_file(run, one_line_error):
    line = one_line_error(run("compare", "lenet5", "nowhere/net.py:build"))
    assert "nowhere/net.py" in line


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<svg")])
def test_plot_is_rendered(run, tmp_path, suffix, magic):
    pytest.importorskip("matplotlib")
    path = tmp_path / f"cmp{suffix}"
    result = run("compare", "lenet5", "nin", "alexnet", "--plot", str(path))
    assert result.exit_code == 0, result.output
    data = path.read_bytes()
    assert len(data) > 5_000  # three labelled bubbles, axes and title: not an empty figure
    assert magic in data[:400]


def test_plot_needs_a_png_or_svg_name(run, one_line_error, tmp_path):
    line = one_line_error(run("compare", "lenet5", "nin", "--plot", str(tmp_path / "x.gif")))
    assert ".png or .svg" in line


def test_plot_without_matplotlib_says_how_to_install(run, one_line_error, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    line = one_line_error(run("compare", "lenet5", "nin", "--plot", str(tmp_path / "x.png")))
    assert "pip install 'cnnscope[plot]'" in line
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_bench_adds_latency_and_throughput_rows(run):
    result = run("compare", "lenet5", "nin", "--bench", "--device", "cpu", "-f", "json")
    assert result.exit_code == 0, result.output
    for m in json.loads(result.stdout)["models"]:
        b = m["bench"]
        assert b["latency_ms"] > 0 and b["device"].startswith("cpu")
        assert b["throughput"] == pytest.approx(1000.0 / b["latency_ms"])


def test_bench_cannot_time_int8(run, one_line_error):
    line = one_line_error(run("compare", "lenet5", "nin", "--bench", "--dtype", "int8", "--device", "cpu"))
    assert "cannot time int8" in line
