"""Issue 13 item 5: ``--counter fvcore`` sets cnnscope's and fvcore's counts side by side,
per layer, with the difference and its cause. Expected numbers are written as arithmetic
from fvcore's documented handlers (fvcore/nn/jit_handles.py, flop_count.py)."""

import json

import pytest
import torch
from torch import nn

from cnnscope.api import fvcore_check
from cnnscope.models import ModelSource

B, C, H = 2, 8, 8  # batch, channels after conv a, side


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, C, 3, padding=1, bias=True)
        self.bn = nn.BatchNorm2d(C)
        self.same = nn.Conv2d(C, C, 3, padding="same")
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.upb = nn.Upsample(scale_factor=2, mode="bilinear")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(C, 5)

    def forward(self, x):
        y = self.same(self.bn(self.a(x)))
        z = self.pool(self.up(y)) + self.pool(self.upb(y))
        return self.fc(torch.flatten(z, 1))


@pytest.fixture(scope="module")
def check():
    return fvcore_check(ModelSource("mixed", (3, H, H), Mixed), batch=B)


def rows(check):
    return {r.name: r for r in check.rows}


def test_bias_makes_no_difference(check):
    a = rows(check)["a"]
    assert a.macs == a.fvcore == B * C * H * H * 3 * 3 * 3  # neither counts the bias
    assert a.difference == 0 and a.cause == ""
    assert a.flops == 2 * a.macs + B * C * H * H  # cnnscope's FLOPs add the bias


def test_batch_norm_counted_by_fvcore_only(check):
    bn = rows(check)["bn"]
    assert bn.macs == 0 and bn.fvcore == 2 * B * C * H * H  # affine: 2 per element
    assert bn.difference == 2 * B * C * H * H and bn.cause == "batch norm"


def test_same_padding_conv_is_skipped_by_fvcore(check):
    same = rows(check)["same"]
    assert same.macs == B * C * H * H * C * 3 * 3 and same.fvcore == 0
    assert same.difference == -(B * C * H * H * C * 3 * 3)
    assert same.cause == "padding='same' conv"


def test_upsample_and_adaptive_pool(check):
    r = rows(check)
    out = B * C * (2 * H) * (2 * H)  # upsampled output elements
    assert r["up"].fvcore == 1 * out and r["up"].cause == "upsample nearest"
    assert r["upb"].fvcore == 4 * out and r["upb"].cause == "upsample bilinear"
    # one module called twice: one row, fvcore's 1 per input element for both calls
    assert r["pool"].fvcore == 2 * out and r["pool"].cause == "adaptive avg pool"
    assert r["fc"].macs == r["fc"].fvcore == B * C * 5


def test_differences_add_up_by_cause(check):
    out = B * C * (2 * H) * (2 * H)
    expected = {"batch norm": 2 * B * C * H * H, "padding='same' conv": -(B * C * H * H * C * 9),
                "upsample nearest": out, "upsample bilinear": 4 * out,
                "adaptive avg pool": 2 * out}
    assert check.by_cause() == expected
    assert check.difference == sum(expected.values()) == check.fvcore - check.macs
    assert sum(r.macs for r in check.rows) == check.macs


def test_cli_shows_both_columns_and_never_zero_flops(run):
    res = run("params", "resnet18", "--counter", "fvcore", env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    out = res.stdout
    header = next(line for line in out.splitlines() if line.startswith("layer "))
    for column in ("cnnscope MACs", "cnnscope FLOPs", "fvcore", "difference", "cause"):
        assert column in header
    assert "FLOPs 0" not in out and "0FLOP" not in out
    assert "fvcore counts multiply-adds" in out


def test_cli_json_resnet18_difference_by_cause(run):
    res = run("params", "resnet18", "--counter", "fvcore", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    t = data["totals"]
    assert t["macs"] == t["cnnscope_macs"] == 1_814_073_344  # torchvision's 1.81 GMACs
    assert "flops" not in t  # fvcore has no FLOPs: no 0 stands in for them
    # ResNet-18's batch-norm outputs: bn1 64x112x112; layer1 4 x 64x56x56; layer2 5 x
    # 128x28x28 (one in the downsample); layer3 5 x 256x14x14; layer4 5 x 512x7x7.
    bn = 64 * 112 * 112 + 4 * 64 * 56 * 56 + 5 * 128 * 28 * 28 + 5 * 256 * 14 * 14 + 5 * 512 * 7 * 7
    assert data["difference_by_cause"] == {"batch norm": 2 * bn, "adaptive avg pool": 512 * 7 * 7}
    assert t["difference"] == 2 * bn + 512 * 7 * 7


def test_cli_csv_and_depth_keep_the_totals(run):
    res = run("params", "resnet18", "--counter", "fvcore", "--format", "csv",
              "--depth", "1")
    assert res.exit_code == 0, res.output
    import csv
    import io

    rows_ = list(csv.DictReader(io.StringIO(res.stdout)))
    assert sum(int(r["cnnscope_macs"]) for r in rows_) == 1_814_073_344
    assert {r["name"] for r in rows_} >= {"conv1", "layer1", "layer4", "fc"}


def test_plot_with_fvcore_is_a_one_line_error(run, tmp_path):
    res = run("params", "lenet5", "--counter", "fvcore", "--plot",
              str(tmp_path / "x.png"))
    assert res.exit_code == 2 and res.stderr.startswith("cnnscope: error:")
    assert res.stderr.count("\n") == 1


def test_the_api_fvcore_report_never_prints_zero_flops():
    import io

    from rich.console import Console

    import cnnscope
    from cnnscope.report.render import render_table

    report = cnnscope.analyze("lenet5", counter="fvcore")
    con = Console(width=160, file=io.StringIO(), color_system=None)
    render_table(report, con, rows=report.visible_layers())
    text = con.file.getvalue()
    assert "FLOPs 0" not in text and "0FLOP" not in text
    assert "FLOPs: not computed (fvcore counts multiply-adds only)" in text
