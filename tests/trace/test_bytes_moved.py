"""``bytes_moved`` and ``arithmetic_intensity`` of every layer record.

Convention (issue 17): input activations + parameters + output activations of each
layer call, each tensor counted once at its dtype. Every expected value is written out
from the layer's sizes.
"""

import csv
import io
import json
from math import prod

import pytest
import torch
from torch import nn

import cnnscope
from cnnscope.analysis.aggregate import group_by_depth
from cnnscope.report.render import render_text
from cnnscope.trace.tracer import trace_module

F32 = 4  # bytes per float32 element


def by_name(report, name):
    return next(r for r in report.layers if r.name == name)


def test_resnet18_conv1_is_the_issue_example():
    r = by_name(cnnscope.analyze("resnet18"), "conv1")
    inputs = 1 * 3 * 224 * 224 * F32  # 602,112
    weights = 64 * 3 * 7 * 7 * F32  # 37,632 (no bias)
    outputs = 1 * 64 * 112 * 112 * F32  # 3,211,264
    assert (inputs, weights, outputs) == (602_112, 37_632, 3_211_264)
    assert r.bytes_moved == inputs + weights + outputs == 3_851_008
    assert r.arithmetic_intensity == r.flops / 3_851_008
    assert r.flops == 2 * 112 * 112 * 64 * 3 * 7 * 7


def test_resnet18_batch_norm_and_residual_add():
    report = cnnscope.analyze("resnet18", batch=2)
    bn1 = by_name(report, "bn1")
    act = 2 * 64 * 112 * 112 * F32
    assert bn1.bytes_moved == act + 2 * 64 * F32 + act  # weight + bias; running stats are buffers
    add = by_name(report, "layer1.0.add")
    x = 2 * 64 * 56 * 56 * F32
    assert add.bytes_moved == x + x + x  # two inputs, one output
    assert add.arithmetic_intensity == add.flops / (3 * x)


def test_every_conv_and_linear_of_resnet50_follows_its_shapes():
    report = cnnscope.analyze("resnet50", batch=3)
    checked = 0
    for r in report.layers:
        if r.type in ("Conv2d", "Linear"):
            expected = (prod(r.input_shapes[0]) + r.params + prod(r.output_shape)) * F32
            assert r.bytes_moved == expected, r.name
            checked += 1
    assert checked == 53 + 1  # 53 convolutions (incl. 4 projections) and the fc


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)  # bias: 4
        self.relu = nn.ReLU(inplace=True)
        self.ident = nn.Identity()
        self.drop = nn.Dropout()
        self.flat = nn.Flatten()
        self.fc = nn.Linear(4 * 6 * 6, 2)

    def forward(self, x):
        x = self.relu(self.conv(x))
        x = x * x  # the same tensor twice: read once
        x = self.conv2_shared(x)
        return self.fc(self.flat(self.drop(self.ident(x))))

    def conv2_shared(self, x):
        return torch.cat([x, x], 1)[:, :4]


def test_small_net_layer_by_layer():
    report = cnnscope.analyze(Small(), (3, 8, 8))
    rows = {r.name: r for r in report.layers}
    inp = 3 * 8 * 8 * F32
    act = 4 * 6 * 6 * F32  # 576 bytes
    assert rows["conv"].bytes_moved == inp + (4 * 3 * 3 * 3 + 4) * F32 + act
    assert rows["relu"].bytes_moved == act + act  # in place: still read and written
    assert rows["mul"].bytes_moved == act + act  # x * x reads x once
    assert rows["cat"].bytes_moved == act + 2 * act  # one distinct input, twice as wide out
    assert rows["slice"].bytes_moved == 0  # [:, :4] is a view of the cat's output
    assert rows["ident"].bytes_moved == 0  # Identity, eval Dropout, a flattening view
    assert rows["drop"].bytes_moved == 0  # move nothing and have no intensity
    assert rows["flat"].bytes_moved == 0
    assert rows["flat"].arithmetic_intensity is None
    assert rows["fc"].bytes_moved == act + (144 * 2 + 2) * F32 + 2 * F32


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1, bias=False)

    def forward(self, x):
        return self.conv(self.conv(x))


def test_a_shared_layer_reads_its_weights_at_every_call():
    report = trace_module(Shared(), (2, 5, 5), 1)
    first, second = report.layers
    act = 2 * 5 * 5 * F32
    assert second.params == 0  # parameters are counted once...
    assert first.bytes_moved == second.bytes_moved == act + 2 * 2 * F32 + act  # ...traffic twice


class Half(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, bias=False, device="meta", dtype=torch.float16)

    def forward(self, x):
        return self.conv(x.to(torch.float16))


def test_bytes_are_at_the_dtype_of_each_tensor():
    report = trace_module(Half(), (3, 10, 10), 2)
    cast, conv = [r for r in report.layers if r.kind != "shape"]
    n_in = 2 * 3 * 10 * 10
    assert cast.bytes_moved == n_in * 4 + n_in * 2  # float32 read, float16 written
    assert conv.bytes_moved == (n_in + 8 * 3 * 3 * 3 + 2 * 8 * 8 * 8) * 2


def test_json_and_csv_carry_both_fields_and_groups_add_their_layers():
    report = cnnscope.analyze("resnet18")
    data = json.loads(render_text(report, "json", rows=report.visible_layers()))
    conv1 = data["layers"][0]
    assert conv1["bytes_moved"] == 3_851_008
    assert conv1["arithmetic_intensity"] == pytest.approx(236_027_904 / 3_851_008, rel=1e-15)
    rows = list(csv.DictReader(io.StringIO(render_text(report, "csv", rows=report.visible_layers()))))
    assert int(rows[0]["bytes_moved"]) == 3_851_008
    assert float(rows[0]["arithmetic_intensity"]) == 236_027_904 / 3_851_008
    grouped = {r.name: r for r in group_by_depth(report, 1)}
    layer1 = [r for r in report.visible_layers() if r.name.startswith("layer1.")]
    assert grouped["layer1"].bytes_moved == sum(r.bytes_moved for r in layer1)
    frame_csv = report.to_csv()
    assert "bytes_moved" in frame_csv.splitlines()[0]
    assert "bytes_moved" in report.convention and "FLOPs / bytes_moved" in report.convention
