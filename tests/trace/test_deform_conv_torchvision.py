"""Deformable convolution with the real ``torchvision.ops`` (slow; skipped without torchvision):
the loop reference computes what torchvision computes, and ``DeformConv2d`` layers traced by
``cnnscope.analyze`` are counted as the reference counts and as the arithmetic written out
here (forward and, in a training trace, backward)."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

import cnnscope
from tests.optional import optional_import
from tests.trace import deform_reference as ref

torchvision = optional_import("torchvision")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(torchvision is None, reason="needs torchvision")]


class DCN(nn.Module):
    """``torchvision.ops.DeformConv2d`` with its offsets (and mask) from a regular conv."""

    def __init__(self, c_in, c_out, kernel=3, stride=1, padding=1, dilation=1, groups=1,
                 offset_groups=1, mask=False, bias=True):
        super().__init__()
        from torchvision.ops import DeformConv2d

        k_points = kernel * kernel
        self.offset = nn.Conv2d(c_in, 2 * offset_groups * k_points, kernel, stride, padding,
                                dilation)
        self.mask = nn.Conv2d(c_in, offset_groups * k_points, kernel, stride, padding,
                              dilation) if mask else None
        self.dcn = DeformConv2d(c_in, c_out, kernel, stride, padding, dilation, groups, bias)

    def forward(self, x):
        mask = torch.sigmoid(self.mask(x)) if self.mask is not None else None
        return self.dcn(x, self.offset(x), mask)


def _row(report):
    (row,) = [r for r in report.layers if r.type == "deform_conv2d"]
    return row


@pytest.mark.parametrize("use_mask", [False, True], ids=["v1", "mask"])
@pytest.mark.parametrize("geometry", [
    # c_in, c_out, h, w, kernel, stride, padding, dilation, groups, offset_groups
    (2, 3, 5, 6, 3, 1, 1, 1, 1, 1),
    (4, 4, 7, 6, 3, 2, 1, 2, 2, 2),
    (6, 6, 5, 5, 2, 1, 0, 1, 3, 3),
], ids=["plain", "strided", "grouped"])
def test_the_reference_computes_what_torchvision_computes(geometry, use_mask):
    c_in, c_out, h, w, k, s, p, d, g, og = geometry
    h_out = (h + 2 * p - d * (k - 1) - 1) // s + 1
    w_out = (w + 2 * p - d * (k - 1) - 1) // s + 1
    gen = torch.Generator().manual_seed(0)

    def t(*shape, scale=1.0):
        return (torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale

    x, weight, bias = t(1, c_in, h, w), t(c_out, c_in // g, k, k), t(c_out)
    offset = t(1, 2 * og * k * k, h_out, w_out, scale=2.5)  # fractional, some points outside
    mask = t(1, og * k * k, h_out, w_out) if use_mask else None
    want = torchvision.ops.deform_conv2d(x, offset, weight, bias, (s, s), (p, p), (d, d), mask)
    got = ref.deform_conv2d(x.tolist(), weight.tolist(), offset.tolist(),
                            mask.tolist() if use_mask else [[0.0]], bias.tolist(), (s, s),
                            (p, p), (d, d), g, og, use_mask)
    torch.testing.assert_close(torch.tensor(got, dtype=torch.float64), want)


@pytest.mark.parametrize("use_mask", [False, True], ids=["v1", "mask"])
def test_a_deformconv2d_layer_counts_what_the_reference_counts(use_mask):
    model = DCN(4, 6, 3, 2, 1, 1, groups=2, offset_groups=2, mask=use_mask)
    row = _row(cnnscope.analyze(model, (4, 7, 7)))
    rng = random.Random(2)

    def t(*shape):
        return rng.uniform(-2, 2) if not shape else [t(*shape[1:]) for _ in range(shape[0])]

    ops = ref.Arithmetic()
    ref.deform_conv2d(t(1, 4, 7, 7), t(6, 2, 3, 3), t(1, 2 * 2 * 9, 4, 4),
                      t(1, 2 * 9, 4, 4) if use_mask else [[0.0]], t(6), (2, 2), (1, 1), (1, 1),
                      2, 2, use_mask, ops=ops)
    assert row.macs == ops.counts["convolution", "mul"]
    assert row.flops == ops.total("convolution") + ops.total("sampling")
    assert row.params == 6 * 2 * 3 * 3 + 6


@pytest.mark.parametrize("use_mask", [False, True], ids=["v1", "mask"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_deformconv2d_64_on_56x56_forward_and_backward(use_mask, bias):
    # DeformConv2d(64, 64, 3, padding=1) on 1x64x56x56: the figures of the docs.
    report = cnnscope.analyze(DCN(64, 64, mask=use_mask, bias=bias), (64, 56, 56), train=True)
    row = _row(report)
    m = 1 if use_mask else 0
    conv = 64 * 56 * 56 * 64 * 3 * 3  # C_out * H_out * W_out * C_in * K
    s = 64 * 9 * 56 * 56  # C_in * K * H_out * W_out bilinear samples
    b = 64 * 56 * 56  # torchvision adds a zero bias when the layer has none
    assert (row.macs, row.flops) == (conv, 2 * conv + b + s * (17 + m))
    assert row.params == 64 * 64 * 3 * 3 + (64 if bias else 0)
    per_sample = (10 + m + 8) + (10 + m + 10 + 2 + 2) + (7 + 1 + 1) * m + (17 + m)
    assert (row.backward_macs, row.backward_flops) == (2 * conv, 4 * conv + b + s * per_sample)
