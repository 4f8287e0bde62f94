"""Every aten layout of a convolution read by its own parser: the same convolution gives
the same cost and geometry whichever op PyTorch names it by.

Expected values are the arithmetic of the convolution written out: a 3x5 kernel, 3 -> 8
channels, stride (2, 1), padding (1, 2), on a 9x9 input: output 5x9.
"""

from __future__ import annotations

import pytest

from cnnscope.ops import registry
from cnnscope.ops.cost import Cost
from cnnscope.ops.cost import TensorShape as T

X, W, B = T((1, 3, 9, 9)), T((8, 3, 3, 5)), T((8,))
OUT = [(1, 8, 5, 9)]
MACS = (1 * 8 * 5 * 9) * (3 * 3 * 5)  # output elements x (C_in/groups x kernel)
GEOMETRY = {"kernel_size": (3, 5), "stride": (2, 1), "padding": (1, 2), "dilation": (1, 1),
            "groups": 1}

LAYOUTS = {
    # convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    "convolution": (X, W, B, [2, 1], [1, 2], [1, 1], False, [0, 0], 1),
    # conv2d(input, weight, bias, stride, padding, dilation, groups)
    "conv2d": (X, W, B, [2, 1], [1, 2], [1, 1], 1),
    # mkldnn_convolution(input, weight, bias, padding, stride, dilation, groups)
    "mkldnn_convolution": (X, W, B, [1, 2], [2, 1], [1, 1], 1),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_each_layout_reads_the_same_convolution(name):
    spec = registry.lookup(name)
    assert registry.op_cost(spec, LAYOUTS[name], OUT) == Cost(MACS, 2 * MACS + 1 * 8 * 5 * 9)
    assert registry.geometry(name, LAYOUTS[name], OUT) == GEOMETRY


def test_cudnn_convolution_has_no_bias_and_its_benchmark_flag_is_not_transposed():
    # cudnn_convolution(input, weight, padding, stride, dilation, groups, benchmark,
    # deterministic, allow_tf32): the 7th argument is benchmark, not transposed
    args = (X, W, [1, 2], [2, 1], [1, 1], 1, True, False, True)
    assert registry.op_cost(registry.lookup("cudnn_convolution"), args, OUT) == Cost(MACS, 2 * MACS)
    assert registry.geometry("cudnn_convolution", args, OUT) == GEOMETRY


def test_conv2d_same_padding_is_read_as_widths():
    args = (X, W, None, [1, 1], "same", [1, 1], 1)
    assert registry.geometry("conv2d", args, [(1, 8, 9, 9)])["padding"] == (
        (3 - 1) // 2, (5 - 1) // 2)


def test_conv_transpose2d_counts_from_the_input_side():
    # conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)
    x, w = T((1, 8, 5, 9)), T((8, 3, 3, 5))  # weight: (C_in, C_out/groups, kH, kW)
    out = [(1, 3, (5 - 1) * 2 - 2 * 1 + (3 - 1) + 1 + 1, (9 - 1) * 1 - 2 * 2 + (5 - 1) + 0 + 1)]
    args = (x, w, T((3,)), [2, 1], [1, 2], [1, 0], 1, [1, 1])
    macs = (1 * 8 * 5 * 9) * (3 * 3 * 5)  # input elements x (C_out/groups x kernel)
    assert registry.op_cost(registry.lookup("conv_transpose2d"), args, out) == Cost(
        macs, 2 * macs + 1 * 3 * 10 * 9)
    assert registry.geometry("conv_transpose2d", args, out) == {
        **GEOMETRY, "extra": {"transposed": True, "output_padding": (1, 0)}}
