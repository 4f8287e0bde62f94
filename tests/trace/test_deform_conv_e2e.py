"""Deformable convolution end to end: a model calling ``torchvision::deform_conv2d`` traced by
``cnnscope.analyze`` on meta (torchvision's op, or the stand-in of ``deform_op`` where
torchvision is absent), its row against the counted loop reference (``deform_reference``)
and arithmetic written out here, and what ``rf`` and ``shape`` print for it."""

from __future__ import annotations

import random

import pytest

import cnnscope
from cnnscope.analysis.receptive_field import receptive_fields
from tests.trace import deform_reference as ref
from tests.trace.deform_op import DeformBlock, ensure_op


@pytest.fixture(scope="module", autouse=True)
def _op():
    ensure_op()


def _row(report):
    (row,) = [r for r in report.layers if r.type == "deform_conv2d"]
    return row


def _counted(c_in, c_out, h, w, kernel, stride, padding, dilation, groups, og, use_mask):
    """Run the loop reference on random tensors of the layer's shapes; its counts."""
    h_out = (h + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    w_out = (w + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    rng = random.Random(1)

    def t(*shape):
        return rng.uniform(-2, 2) if not shape else [t(*shape[1:]) for _ in range(shape[0])]

    ops = ref.Arithmetic()
    ref.deform_conv2d(t(1, c_in, h, w), t(c_out, c_in // groups, kernel, kernel),
                      t(1, 2 * og * kernel * kernel, h_out, w_out),
                      t(1, og * kernel * kernel, h_out, w_out) if use_mask else [[0.0]],
                      t(c_out), (stride, stride), (padding, padding), (dilation, dilation),
                      groups, og, use_mask, ops=ops)
    return ops.counts["convolution", "mul"], ops.total("convolution") + ops.total("sampling")


CONFIGS = [  # c_in, c_out, h, w, kernel, stride, padding, dilation, groups, offset_groups, mask
    (4, 6, 9, 9, 3, 1, 2, 2, 1, 1, True),
    (4, 6, 9, 9, 3, 1, 1, 1, 1, 1, False),
    (6, 4, 8, 7, 3, 2, 1, 1, 2, 3, True),
    (4, 8, 6, 6, 1, 1, 0, 1, 4, 2, False),
]


@pytest.mark.parametrize("config", CONFIGS, ids=[f"c{i}" for i in range(len(CONFIGS))])
def test_the_row_counts_what_the_loop_reference_counts(config):
    c_in, c_out, h, w, k, s, p, d, g, og, use_mask = config
    model = DeformBlock(c_in, c_out, k, s, p, d, g, og, mask=use_mask)
    row = _row(cnnscope.analyze(model, (c_in, h, w)))
    macs, flops = _counted(c_in, c_out, h, w, k, s, p, d, g, og, use_mask)
    assert (row.macs, row.flops) == (macs, flops)
    assert row.params == c_out * (c_in // g) * k * k + c_out  # weight + bias
    h_out = (h + 2 * p - d * (k - 1) - 1) // s + 1
    w_out = (w + 2 * p - d * (k - 1) - 1) // s + 1
    assert tuple(row.output_shape) == (1, c_out, h_out, w_out)
    assert (row.kernel_size, row.stride, row.padding, row.dilation, row.groups) == \
        ((k, k), (s, s), (p, p), (d, d), g)


@pytest.mark.parametrize("use_mask", [False, True], ids=["v1", "mask"])
def test_a_training_trace_counts_the_backward_as_written_down(use_mask):
    model = DeformBlock(4, 6, 3, 2, 1, 1, 2, 1, mask=use_mask)
    row = _row(cnnscope.analyze(model, (4, 7, 7), train=True))
    m = 1 if use_mask else 0
    h_out = (7 + 2 * 1 - 1 * (3 - 1) - 1) // 2 + 1
    macs = 6 * h_out * h_out * (4 // 2) * 3 * 3  # C_out * H_out * W_out * C_in/groups * K
    s = 4 * 9 * h_out * h_out  # C_in * K * H_out * W_out bilinear samples
    b = 6 * h_out * h_out
    per_sample = (10 + m + 8) + (10 + m + 10 + 2 + 2) + (7 + 1 + 1) * m + (17 + m)
    assert (row.backward_macs, row.backward_flops) == (2 * macs, 4 * macs + b + s * per_sample)


def test_the_receptive_field_is_the_nominal_grid_marked_as_such():
    # k=3, dilation 2: the regular grid spans 2*(3-1)+1 = 5 input pixels.
    report = cnnscope.analyze(DeformBlock(4, 6, 3, 1, 2, 2), (4, 9, 9))
    rf = receptive_fields(report)
    field = rf.by_name(_row(report).name)
    assert field.receptive_field == (5, 5)
    assert field.effective_stride == (1, 1)
    assert any("deformable convolution" in w and "nominal" in w for w in field.warnings)
    assert rf.final.name == field.name


def test_the_offsets_field_is_merged_in():
    # The offsets come from a 5x5 convolution: each output reads them at its own position,
    # so its field is the hull of its 3x3 grid (3) and the offsets' 5.
    report = cnnscope.analyze(DeformBlock(4, 6, 3, 1, 1, 1, offset_kernel=5), (4, 9, 9))
    assert receptive_fields(report).by_name(_row(report).name).receptive_field == (5, 5)
    plain = cnnscope.analyze(DeformBlock(4, 6, 3, 1, 1, 1), (4, 9, 9))
    assert receptive_fields(plain).by_name(_row(plain).name).receptive_field == (3, 3)


NET = """
    from tests.trace.deform_op import DeformBlock, ensure_op

    ensure_op()

    def build():
        return DeformBlock(4, 6, 3, stride=2, padding=2, dilation=2)
"""


def test_rf_and_shape_commands_print_the_deformable_row(run, write_file):
    spec = f"{write_file('net.py', NET)}:build"
    rf = run("rf", spec, "--input", "4x9x9", env={"COLUMNS": "200"})
    assert rf.exit_code == 0, rf.output
    (line,) = [ln for ln in rf.stdout.splitlines() if ln.startswith("deform_conv2d ")]
    assert line.split()[2:6] == ["6x5x5", "5", "2", "2"]  # output, RF 2*(3-1)+1, stride, pad
    assert "deformable convolution" in rf.stdout and "nominal" in rf.stdout
    shape = run("shape", spec, "--input", "4x9x9", env={"COLUMNS": "200"})
    assert shape.exit_code == 0, shape.output
    (line,) = [ln for ln in shape.stdout.splitlines() if ln.startswith("deform_conv2d ")]
    assert line.endswith("floor((9 + 2*2 - 2*(3-1) - 1)/2 + 1) = 5")


def test_a_deformable_record_without_its_geometry_is_not_guessed():
    from cnnscope.analysis.rf_rules import rule_of
    from cnnscope.ops.entry import RfRule
    from cnnscope.trace.records import LayerRecord

    def record(**geometry):
        return LayerRecord(index=0, name="d", type="deform_conv2d", kind="function",
                           inputs=(-1,), input_shapes=((1, 3, 8, 8),),
                           output_shape=(1, 3, 8, 8), **geometry)

    assert rule_of(record(kernel_size=(3, 3), stride=(1, 1), padding=(1, 1),
                          dilation=(1, 1))) is RfRule.DEFORMABLE
    assert rule_of(record()) is None  # unknown, as a convolution without its geometry
