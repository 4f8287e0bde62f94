"""Convolution, plain and transposed: every aten layout of it, its cost, geometry and meta kernel.

Each layout PyTorch has for a convolution is read by one parser into ``ConvArgs``; the
cost, the geometry and the meta kernel read only ``ConvArgs``.

Cost: each output element is a dot product over (C_in/groups) x kernel: MACs = output
elements x prod(weight.shape[1:]). A transposed convolution scatters each input element
over (C_out/groups) x kernel outputs, so its MACs are counted from the input side.
FLOPs = 2 x MACs + one add per output element for a bias (a bias is not a MAC).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from cnnscope.ops import deform_conv_math as deform
from cnnscope.ops.cost import Cost, Shape, TensorShape, out_numel
from cnnscope.ops.entry import BACKWARD_IS_A_BACKWARD, RfRule, entry
from cnnscope.ops.meta_tensors import empty
from cnnscope.ops.names import as_tuple
from cnnscope.ops.outsize import conv_output_size, transposed_output_size

# Its ops slide a window: each forward op has a geometry reader and an RF rule (checked).
WINDOWED = True


@dataclass(frozen=True)
class ConvArgs:
    """A convolution's arguments, whatever the op's layout (tensors or their shapes)."""

    x: Any
    w: Any
    bias: Any
    stride: Any
    padding: Any
    dilation: Any
    transposed: bool
    output_padding: Any
    groups: int


def _at(args: Sequence[Any], i: int, default: Any) -> Any:
    return args[i] if len(args) > i else default


def parse_convolution(args: Sequence[Any]) -> ConvArgs:
    """aten.convolution / _convolution(input, weight, bias, stride, padding, dilation,
    transposed, output_padding, groups, ...)."""
    transposed = _at(args, 6, False)
    return ConvArgs(args[0], args[1], _at(args, 2, None), _at(args, 3, 1), _at(args, 4, 0),
                    _at(args, 5, 1), transposed if isinstance(transposed, bool) else False,
                    _at(args, 7, 0), int(_at(args, 8, 1)))


def _same_padding(padding: Any, w: Any, dilation: Any) -> Any:
    """conv2d's padding="same"/"valid" as widths (same: d(k-1)/2 each side, rounded down).
    Only a cost or geometry reads this layout, so ``w`` is a shape."""
    if padding == "valid":
        return 0
    if padding == "same":
        kernel = tuple(w)[2:]
        return [d * (k - 1) // 2 for d, k in zip(as_tuple(dilation, len(kernel)), kernel)]
    return padding


def parse_conv_nd(args: Sequence[Any]) -> ConvArgs:
    """aten.conv{1,2,3}d(input, weight, bias, stride=1, padding=0, dilation=1, groups=1)."""
    w, dilation = args[1], _at(args, 5, 1)
    return ConvArgs(args[0], w, _at(args, 2, None), _at(args, 3, 1),
                    _same_padding(_at(args, 4, 0), w, dilation), dilation, False, 0,
                    int(_at(args, 6, 1)))


def parse_conv_transpose_nd(args: Sequence[Any]) -> ConvArgs:
    """aten.conv_transpose{1,2,3}d(input, weight, bias, stride=1, padding=0,
    output_padding=0, groups=1, dilation=1)."""
    return ConvArgs(args[0], args[1], _at(args, 2, None), _at(args, 3, 1), _at(args, 4, 0),
                    _at(args, 7, 1), True, _at(args, 5, 0), int(_at(args, 6, 1)))


def parse_cudnn_convolution(args: Sequence[Any]) -> ConvArgs:
    """aten.cudnn_convolution(input, weight, padding, stride, dilation, groups, benchmark,
    deterministic, allow_tf32): no bias."""
    return ConvArgs(args[0], args[1], None, _at(args, 3, 1), _at(args, 2, 0), _at(args, 4, 1),
                    False, 0, int(_at(args, 5, 1)))


def parse_mkldnn_convolution(args: Sequence[Any]) -> ConvArgs:
    """aten.mkldnn_convolution(input, weight, bias, padding, stride, dilation, groups)."""
    return ConvArgs(args[0], args[1], _at(args, 2, None), _at(args, 4, 1), _at(args, 3, 0),
                    _at(args, 5, 1), False, 0, int(_at(args, 6, 1)))


# ---------------------------------------------------------------------- cost, geometry, kernel


def conv_cost(c: ConvArgs, outs: Sequence[Shape]) -> Cost:
    """Convolution MACs and FLOPs (see the module docstring)."""
    per_element = prod(c.w[1:])  # (C_in/groups or C_out/groups) * kernel elements
    macs = prod(c.x) * per_element if c.transposed else out_numel(outs) * per_element
    bias_adds = out_numel(outs) if isinstance(c.bias, TensorShape) else 0
    return Cost(macs, 2 * macs + bias_adds)


def conv_geometry(c: ConvArgs) -> dict[str, Any]:
    """Kernel, stride, padding, dilation and groups (transposed: its output padding)."""
    nd = len(c.w) - 2
    g: dict[str, Any] = {
        "kernel_size": tuple(c.w[2:]),
        "stride": as_tuple(c.stride, nd),
        "padding": as_tuple(c.padding, nd),
        "dilation": as_tuple(c.dilation, nd),
        "groups": c.groups,
    }
    if c.transposed:
        g["extra"] = {"transposed": True, "output_padding": as_tuple(c.output_padding, nd)}
    return g


def conv_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """aten.convolution on meta tensors, its output shape from ``trace``'s arithmetic."""
    if len(args) < 9:
        return NotImplemented
    c = parse_convolution(args)
    x, w = c.x, c.w
    nd = w.dim() - 2
    if (x.dim() != nd + 2 or w.device.type != "meta" or w.dtype != x.dtype
            or not all(isinstance(v, (list, tuple)) and len(v) == nd
                       for v in (c.stride, c.padding, c.dilation, c.output_padding))):
        return NotImplemented
    kernel = w.shape[2:]
    if c.transposed:
        if x.shape[1] != w.shape[0]:
            return NotImplemented
        c_out = w.shape[1] * c.groups
        spatial = [transposed_output_size(n, k, s, p, d, op) for n, k, s, p, d, op in
                   zip(x.shape[2:], kernel, c.stride, c.padding, c.dilation, c.output_padding)]
    else:
        if x.shape[1] != w.shape[1] * c.groups:
            return NotImplemented
        c_out = w.shape[0]
        spatial = [conv_output_size(n, k, s, p, d) for n, k, s, p, d in
                   zip(x.shape[2:], kernel, c.stride, c.padding, c.dilation)]
    if any(n < 1 for n in spatial):
        return NotImplemented  # PyTorch raises its own "too small" error
    return empty(x, (x.shape[0], c_out, *spatial))


def _cost_of(parse: Callable[[Sequence[Any]], ConvArgs]):
    def cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
        return conv_cost(parse(args), outs)

    cost.__name__ = "conv_cost"
    cost.__doc__ = ("Convolution: each output element is a dot product over (C_in/groups) x kernel "
                    f"({parse.__name__}).")
    return cost


def _geometry_of(parse: Callable[[Sequence[Any]], ConvArgs]):
    def read_conv(name: str, args: tuple, out_shapes: list) -> dict[str, Any]:
        return conv_geometry(parse(args))

    return read_conv


def _conv(names: Any, parse: Callable[[Sequence[Any]], ConvArgs], **fields: Any):
    return entry(names, cost=_cost_of(parse), geometry=_geometry_of(parse), rf=RfRule.WINDOW,
                 backward=("convolution_backward",), weighted=True, **fields)


# ---------------------------------------------------------------------- backward


def _mask(value: Any, n: int = 3) -> list[bool]:
    if isinstance(value, (list, tuple)) and len(value) == n:
        return [bool(v) for v in value]
    return [True] * n


def conv_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """aten.convolution_backward(grad_out, input, weight, bias_sizes, stride, padding,
    dilation, transposed, output_padding, groups, output_mask): input gradient = the
    forward's MACs, weight gradient = the forward's MACs again, each only when autograd
    asks for it; bias gradient: one add per output-gradient element."""
    grad_out, x, w = args[0], args[1], args[2]
    transposed = bool(args[7]) if len(args) > 7 else False
    mask = _mask(args[10] if len(args) > 10 else None)
    per_element = prod(w[1:])
    forward_macs = prod(x) * per_element if transposed else prod(grad_out) * per_element
    macs = forward_macs * (int(mask[0]) + int(mask[1]))
    bias_adds = prod(grad_out) if mask[2] and args[3] is not None else 0
    return Cost(macs, 2 * macs + bias_adds)


# ---------------------------------------------------------------------- deformable


def deform_conv_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """torchvision::deform_conv2d: the convolution part plus 17 FLOPs (18 with a mask) per
    bilinear sample (the convention and its arithmetic: ``deform_conv_math``)."""
    return deform.forward_cost(deform.parse(args))


def deform_conv_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """torchvision::_deform_conv2d_backward: the gradients of input, weight, offset, mask and
    bias (``deform_conv_math.backward_parts``)."""
    return deform.backward_cost(deform.parse(args, backward=True))


def read_deform_conv(name: str, args: tuple, out_shapes: list) -> dict[str, Any]:
    """The regular grid of the same geometry, plus offset groups and whether a mask is used."""
    return deform.geometry(deform.parse(args))


_CONV_LAYERS = ("Conv1d", "Conv2d", "Conv3d", "LazyConv1d", "LazyConv2d", "LazyConv3d")
_TRANSPOSED_LAYERS = ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
                      "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d")

ENTRIES = (
    _conv(("convolution", "_convolution"), parse_convolution, meta=conv_kernel, fvcore="conv"),
    _conv(("conv2d", "conv1d", "conv3d"), parse_conv_nd, autocast="low",
          torch_functions=(F.conv1d, F.conv2d, F.conv3d, torch.conv1d, torch.conv2d,
                           torch.conv3d)),
    _conv(("conv_transpose2d", "conv_transpose1d", "conv_transpose3d"), parse_conv_transpose_nd,
          autocast="low", fvcore="conv_transpose",
          torch_functions=(F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)),
    _conv("cudnn_convolution", parse_cudnn_convolution),
    _conv("mkldnn_convolution", parse_mkldnn_convolution),
    entry("convolution_backward", cost=conv_backward_cost, backward=BACKWARD_IS_A_BACKWARD),
    # Deformable convolution (torchvision.ops.deform_conv2d / DeformConv2d): the receptive
    # field it reports is the nominal (regular-grid) one, with a warning (RfRule.DEFORMABLE).
    # torchvision registers the meta kernels of both ops.
    entry(deform.FORWARD_OP, cost=deform_conv_cost, geometry=read_deform_conv,
          rf=RfRule.DEFORMABLE, backward=(deform.BACKWARD_OP,), weighted=True),
    entry(deform.BACKWARD_OP, cost=deform_conv_backward_cost, backward=BACKWARD_IS_A_BACKWARD),
    # The torch.nn layers: their records take their geometry from the op above.
    entry((*_CONV_LAYERS, *_TRANSPOSED_LAYERS), rf=RfRule.WINDOW, weighted=True),
)
