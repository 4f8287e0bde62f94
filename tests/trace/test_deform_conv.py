"""Deformable convolution's count (``cnnscope.ops.deform_conv_math``) against an independent
one: the loop reference in ``deform_reference`` run on tiny tensors, counting every multiply
and add. The expected numbers here come from running that definition, or from arithmetic
written out in the test, never from the formula under test."""

from __future__ import annotations

import random

import pytest
import torch

from cnnscope.ops import deform_conv_math as dcm
from tests.trace import deform_reference as ref

# (N, C_in, H, W, C_out, kernel, stride, padding, dilation, groups, offset_groups)
GEOMETRIES = [
    (1, 2, 5, 5, 3, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1),
    (2, 4, 6, 5, 4, (3, 2), (2, 1), (1, 0), (1, 1), 2, 1),
    (1, 4, 7, 7, 2, (3, 3), (1, 2), (2, 1), (2, 1), 1, 2),
    (1, 6, 5, 6, 6, (2, 3), (1, 1), (0, 1), (1, 2), 3, 3),
    (1, 4, 4, 4, 8, (1, 1), (1, 1), (0, 0), (1, 1), 4, 4),
]


def _tensor(rng: random.Random, *shape: int, scale: float = 1.0):
    if not shape:
        return rng.uniform(-scale, scale)
    return [_tensor(rng, *shape[1:], scale=scale) for _ in range(shape[0])]


def _case(geometry, use_mask: bool, with_bias: bool, seed: int = 0):
    n, c_in, h, w, c_out, (kh, kw), stride, padding, dilation, groups, og = geometry
    h_out = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    rng = random.Random(seed)
    x = _tensor(rng, n, c_in, h, w)
    weight = _tensor(rng, c_out, c_in // groups, kh, kw)
    offset = _tensor(rng, n, 2 * og * kh * kw, h_out, w_out, scale=2.5)  # fractional, some outside
    mask = _tensor(rng, n, og * kh * kw, h_out, w_out) if use_mask else [[0.0]] * n
    # torchvision passes a zero bias when the layer has none; its kernel adds it all the same.
    bias = _tensor(rng, c_out) if with_bias else [0.0] * c_out
    args = (x, weight, offset, mask, bias, stride, padding, dilation, groups, og, use_mask)
    shapes = ((n, c_in, h, w), (c_out, c_in // groups, kh, kw), (n, 2 * og * kh * kw, h_out, w_out),
              (n, og * kh * kw, h_out, w_out) if use_mask else (n, 1), (c_out,),
              *stride, *padding, *dilation, groups, og, use_mask)
    return args, shapes, (n, c_out, h_out, w_out)


@pytest.mark.parametrize("use_mask", [False, True], ids=["v1", "mask"])
@pytest.mark.parametrize("with_bias", [False, True], ids=["zero_bias", "bias"])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[f"g{i}" for i in range(len(GEOMETRIES))])
def test_formula_equals_the_counted_loop_reference(geometry, use_mask, with_bias):
    args, shapes, out_shape = _case(geometry, use_mask, with_bias)
    ops = ref.Arithmetic()
    out = ref.deform_conv2d(*args, ops=ops)
    a = dcm.parse(shapes)
    assert dcm.output_shape(a) == out_shape == (len(out), len(out[0]), len(out[0][0]),
                                                len(out[0][0][0]))
    counted_macs = ops.counts["convolution", "mul"]
    counted_bias_adds = ops.counts["convolution", "add"] - counted_macs  # one add per product
    parts = dcm.forward_parts(a)
    assert parts["convolution"].macs == counted_macs
    assert parts["convolution"].flops == 2 * counted_macs + counted_bias_adds
    assert parts["sampling"] == dcm.Cost(0, ops.total("sampling"))
    assert dcm.forward_cost(a) == dcm.Cost(counted_macs, ops.total("convolution")
                                           + ops.total("sampling"))


def test_the_reference_is_a_convolution_at_zero_offsets():
    # The oracle itself: with zero offsets and a mask of ones it is torch's conv2d.
    geometry = (2, 4, 6, 5, 4, (3, 2), (2, 1), (1, 0), (1, 1), 2, 1)
    (x, weight, offset, mask, bias, stride, padding, dilation, groups, og, _), _, _ = \
        _case(geometry, True, True)
    zeros = [[[[0.0] * len(r) for r in plane] for plane in sample] for sample in offset]
    ones = [[[[1.0] * len(r) for r in plane] for plane in sample] for sample in mask]
    got = ref.deform_conv2d(x, weight, zeros, ones, bias, stride, padding, dilation, groups, og,
                            True)
    want = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64),
                                      torch.tensor(weight, dtype=torch.float64),
                                      torch.tensor(bias, dtype=torch.float64), stride, padding,
                                      dilation, groups)
    torch.testing.assert_close(torch.tensor(got, dtype=torch.float64), want)


def test_the_reference_samples_between_pixels():
    # A 1x1 kernel of weight 1 moved down by half a pixel averages each row with the next
    # (zeros below the last row); a mask of 0.5 halves that.
    x = [[[[1.0, 2.0], [5.0, 8.0]]]]
    offset = [[[[0.5, 0.5], [0.5, 0.5]], [[0.0, 0.0], [0.0, 0.0]]]]
    mask = [[[[0.5, 0.5], [0.5, 0.5]]]]
    out = ref.deform_conv2d(x, [[[[1.0]]]], offset, mask, [0.0], (1, 1), (0, 0), (1, 1), 1, 1,
                            True)
    assert out == [[[[0.5 * (1 + 5) / 2, 0.5 * (2 + 8) / 2], [0.5 * 5 / 2, 0.5 * 8 / 2]]]]


def test_parse_reads_the_schema_and_the_backward_argument_list():
    # torchvision::deform_conv2d(input, weight, offset, mask, bias, stride_h, stride_w, pad_h,
    # pad_w, dilation_h, dilation_w, groups, offset_groups, use_mask)
    fwd = ((2, 8, 9, 10), (6, 4, 3, 2), (2, 2 * 2 * 6, 5, 9), (2, 2 * 6, 5, 9), (6,),
           2, 1, 1, 0, 1, 1, 2, 2, True)
    a = dcm.parse(fwd)
    assert (a.stride, a.padding, a.dilation, a.groups, a.offset_groups, a.use_mask) == \
        ((2, 1), (1, 0), (1, 1), 2, 2, True)
    assert dcm.parse(((2, 6, 5, 9), *fwd), backward=True) == a
    assert dcm.output_shape(a) == (2, 6, (9 + 2 * 1 - 1 * (3 - 1) - 1) // 2 + 1,
                                   (10 + 2 * 0 - 1 * (2 - 1) - 1) // 1 + 1)
    assert dcm.geometry(a) == {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0),
                               "dilation": (1, 1), "groups": 2,
                               "extra": {"deformable": True, "offset_groups": 2,
                                         "use_mask": True}}
    with pytest.raises(ValueError, match="14 arguments"):
        dcm.parse(fwd[:-1])


def test_deformconv2d_64_channels_on_56x56():
    # DeformConv2d(64, 64, 3, padding=1) on 1x64x56x56, the figures of the docs.
    a = dcm.parse(((1, 64, 56, 56), (64, 64, 3, 3), (1, 2 * 9, 56, 56), (1, 1), (64,),
                   1, 1, 1, 1, 1, 1, 1, 1, False))
    conv = 64 * 56 * 56 * 64 * 3 * 3
    s = 64 * 9 * 56 * 56
    assert dcm.forward_parts(a) == {"convolution": dcm.Cost(conv, 2 * conv + 64 * 56 * 56),
                                    "sampling": dcm.Cost(0, s * (2 + 4 + 4 + 4 + 3))}
    masked = dcm.parse(((1, 64, 56, 56), (64, 64, 3, 3), (1, 2 * 9, 56, 56), (1, 9, 56, 56),
                        (64,), 1, 1, 1, 1, 1, 1, 1, 1, True))
    assert dcm.forward_cost(masked) == dcm.Cost(conv, 2 * conv + 64 * 56 * 56 + s * 18)


@pytest.mark.parametrize("use_mask", [False, True], ids=["v1", "mask"])
def test_backward_parts_as_written_down(use_mask):
    a = dcm.parse(((2, 4, 6, 6), (8, 2, 3, 3), (2, 2 * 9, 3, 3),
                   (2, 9, 3, 3) if use_mask else (2, 1), (8,), 2, 2, 1, 1, 1, 1, 2, 1, use_mask))
    m = 1 if use_mask else 0
    macs = 2 * 8 * 3 * 3 * (2 * 3 * 3)  # N * C_out * H_out * W_out * C_in/groups * K
    s = 2 * 4 * 9 * 3 * 3  # N * C_in * K * H_out * W_out
    b = 2 * 8 * 3 * 3
    assert dcm.backward_parts(a) == {
        "input": dcm.Cost(macs, 2 * macs + s * (10 + m + 4 + 4)),
        "offset": dcm.Cost(0, s * (10 + m + 5 + 5 + 2 + 2)),
        "mask": dcm.Cost(0, s * (7 + 1 + 1) * m),
        "weight": dcm.Cost(macs, 2 * macs + s * (17 + m)),
        "bias": dcm.Cost(0, b),
    }
    assert dcm.backward_cost(a) == dcm.Cost(2 * macs, 4 * macs + b + s * (71 if use_mask else 59))
