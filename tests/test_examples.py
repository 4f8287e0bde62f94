"""The files in examples/ work as their docstrings say."""

import json
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CUSTOM = ROOT / "examples" / "custom_model.py"


def tiny_params(width, num_classes=10):
    # TinyNet: conv3x3 3->w (no bias) + BN(w): 27w + 2w; conv3x3 w->2w (no bias) + BN(2w):
    # 18w^2 + 4w; fc 2w->classes with bias.
    return 3 * width * 9 + 2 * width + width * 2 * width * 9 + 2 * 2 * width \
        + 2 * width * num_classes + num_classes


def tiny_macs(width, side=32, num_classes=10):
    # conv1 keeps side x side (padding 1); conv2 halves it (stride 2, padding 1).
    half = side // 2
    return side * side * width * 3 * 9 + half * half * 2 * width * width * 9 \
        + 2 * width * num_classes


def test_custom_model_params_command_at_its_own_input(run):
    result = run("params", f"{CUSTOM}:build", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["input_size"] == [3, 32, 32]  # from build.input_size
    assert data["totals"]["params"] == tiny_params(16)
    assert data["totals"]["macs"] == tiny_macs(16)


def test_custom_model_with_arg_as_documented(run):
    # The documented command: cnnscope params examples/custom_model.py:build --arg width=32
    result = run("params", f"{CUSTOM}:build", "--arg", "width=32", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["totals"]["params"] == tiny_params(32)
    assert data["totals"]["macs"] == tiny_macs(32)


def test_custom_model_in_compare_with_arg(run):
    result = run("compare", f"{CUSTOM}:build", "resnet18", "--arg",
                 f"{CUSTOM}:build:width=32", "-f", "json")
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)["models"][0]
    assert first["totals"]["params"] == tiny_params(32)
    # conv, conv, fc on the deepest path.
    assert first["depth"] == 3


def test_api_script_runs(tmp_path, capsys, monkeypatch):
    script = ROOT / "examples" / "api_script.py"
    monkeypatch.setattr("sys.argv", [str(script), str(tmp_path)])
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    # ResNet-18: torchvision's ResNet18_Weights.IMAGENET1K_V1 num_params.
    assert "resnet18: 11,689,512 params" in out
    assert f"custom_model width=32: {tiny_params(32):,} params at input 3x32x32" in out
    assert "googlenet: 0.05x params" in out
    assert (tmp_path / "resnet18.layers.csv").stat().st_size > 0
    assert json.loads((tmp_path / "resnet18.json").read_text())["totals"]["params"] == 11_689_512
