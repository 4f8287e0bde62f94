"""Inputs of any rank (C, CxL, CxHxW, CxTxHxW) and count (one per forward argument),
and a factory's example_inputs(batch), from the API and the command line."""

import json
import textwrap

import pytest

import cnnscope
from torch import nn
from cnnscope.errors import InvalidInputSizeError, TraceError
from cnnscope.trace.sizes import parse_input_size

MODELS = """
    import torch
    from torch import nn

    def signal():
        return nn.Sequential(nn.Conv1d(2, 4, 5, stride=2, bias=False), nn.ReLU(),
                             nn.AdaptiveAvgPool1d(1))
    signal.input_size = (2, 100)

    def video():
        return nn.Sequential(nn.Conv3d(3, 8, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3),
                                       bias=False))

    def vector():
        return nn.Linear(6, 2, bias=False)

    class Fuse(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.b = nn.Conv2d(1, 4, 3, padding=1, bias=False)

        def forward(self, x, y):
            return self.a(x) + self.b(y)

    def fuse():
        return Fuse()
    fuse.input_size = ((3, 16, 16), (1, 16, 16))

    class DictNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, padding=1, bias=False)

        def forward(self, batch):
            return self.a(batch["image"]) * batch["mask"]

    def dictnet():
        return DictNet()
    dictnet.example_inputs = lambda b: ({"image": torch.randn(b, 3, 8, 8),
                                         "mask": torch.ones(b, 1, 8, 8)},)
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("inputs") / "nd.py"
    path.write_text(textwrap.dedent(MODELS))
    return path


@pytest.mark.parametrize("text, size", [("3", (3,)), ("2x100", (2, 100)),
                                        ("3x224x224", (3, 224, 224)),
                                        ("3x16x112x112", (3, 16, 112, 112))])
def test_every_rank_parses(text, size):
    assert parse_input_size(text) == size


@pytest.mark.parametrize("text", ["", "x3", "3x224x224x2x2", "3x0", "3xx4"])
def test_malformed_sizes_are_refused(text):
    with pytest.raises(InvalidInputSizeError):
        parse_input_size(text)


def test_one_dimensional_signal(models):
    report = cnnscope.analyze(f"{models}:signal")  # its own input_size, 2x100
    assert report.input_size == (2, 100)
    # L_out = floor((100 - 5) / 2) + 1 = 48
    assert report.totals.macs == 48 * 4 * 2 * 5
    assert report.output_shapes == ((1, 4, 1),)


def test_video_input_from_the_command_line(run, models):
    result = run("params", f"{models}:video", "--input", "3x16x112x112", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["input_size"] == [3, 16, 112, 112]
    assert data["totals"]["macs"] == 8 * 16 * 56 * 56 * 3 * 3 * 7 * 7
    assert data["output_shapes"] == [[1, 8, 16, 56, 56]]


def test_channels_only_input(models):
    assert cnnscope.analyze(f"{models}:vector", "6", batch=3).totals.macs == 3 * 6 * 2


def test_two_inputs_from_the_command_line_and_the_api(run, models):
    result = run("params", f"{models}:fuse", "--input", "3x32x32",
                 "--input", "1x32x32", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["input_sizes"] == [[3, 32, 32], [1, 32, 32]]
    assert data["totals"]["macs"] == 32 * 32 * 4 * (3 * 9) + 32 * 32 * 4 * (1 * 9)
    api = cnnscope.analyze(f"{models}:fuse", [(3, 32, 32), (1, 32, 32)])
    assert api.totals.macs == data["totals"]["macs"]
    own = cnnscope.analyze(f"{models}:fuse")  # the factory's input_size: two inputs
    assert own.input_sizes == ((3, 16, 16), (1, 16, 16))
    assert own.totals.macs == 16 * 16 * 4 * (3 * 9 + 1 * 9)


def test_missing_input_is_a_one_line_error_with_the_fix(run, models):
    result = run("params", f"{models}:fuse", "--input", "3x32x32")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "one --input per positional argument" in line


def test_example_inputs_with_a_dict(models):
    report = cnnscope.analyze(f"{models}:dictnet")
    assert report.input_sizes == ((3, 8, 8), (1, 8, 8))
    assert report.totals.macs == 8 * 8 * 4 * 27
    assert report.device == "meta"
    cpu = cnnscope.analyze(f"{models}:dictnet", device="cpu", batch=2)
    assert cpu.totals.macs == 2 * 8 * 8 * 4 * 27


def test_rf_and_shape_explain_extra_dims(run, models):
    rf = run("rf", f"{models}:video", "--input", "3x16x112x112")
    assert rf.exit_code == 0, rf.output
    assert "axes: D x H x W" in rf.stdout and "the first dim is channels" in rf.stdout
    assert "3x7x7" in rf.stdout  # the field per axis: time x height x width
    shape = run("shape", f"{models}:signal")
    assert shape.exit_code == 0, shape.output
    assert "input 2x100: the first dim is channels" in shape.stdout
    assert "floor((100 + 2*0 - 1*(5-1) - 1)/2 + 1) = 48" in shape.stdout


class _Windowed(nn.Module):
    """A timm-made module: it carries its input size in ``pretrained_cfg`` and splits its
    map into 12x12 windows (as MaxViT does), so 224 does not fit."""

    pretrained_cfg = {"input_size": (3, 48, 48)}

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        h = y.shape[-2]
        assert h % 12 == 0, f"height ({h}) must be divisible by window (12)"
        return y.reshape(y.shape[0], 4, h // 12, 12, -1).sum(dim=(2, 3))


def test_a_built_module_is_traced_at_its_own_input_size():
    # Issue 22 item 4: timm.create_model("maxvit_nano_rw_256") was traced at 224.
    report = cnnscope.analyze(_Windowed())
    assert report.input_size == (3, 48, 48)
    assert report.totals.macs == 4 * 48 * 48 * 3 * 3 * 3  # the conv, written out


def test_a_shape_failure_hints_at_the_input_size_not_the_device():
    with pytest.raises(TraceError) as info:
        cnnscope.analyze(_Windowed(), (3, 224, 224))
    assert "divisible by window" in info.value.message
    assert "--input" in info.value.hint and "device" not in info.value.hint
