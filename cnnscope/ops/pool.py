"""Pooling: max and average over windows, adaptive pooling, and their backward ops.

FLOPs: one (compare or add) per window element per output element; adaptive pooling
visits every input element once (exact for non-overlapping windows). Backward: max
pooling scatters each output-gradient element (1 each), average pooling spreads it over
its window (one per window element), adaptive average pooling one per input element.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from math import prod
from typing import Any, Sequence

import torch

from cnnscope.ops.cost import Cost, Shape, out_numel, per_grad_element
from cnnscope.ops.entry import BACKWARD_IS_A_BACKWARD, RfRule, entry
from cnnscope.ops.meta_tensors import empty
from cnnscope.ops.names import as_tuple
from cnnscope.ops.outsize import conv_output_size
from cnnscope.ops.resize import resize_kernel

# Its ops slide a window: each forward op has a geometry reader and an RF rule (checked).
WINDOWED = True


@dataclass(frozen=True)
class PoolArgs:
    """A pooling op's arguments: max_pool*(x, k, s, p, d, ceil_mode) /
    avg_pool*(x, k, s, p, ceil_mode, ...); ``stride`` None means the kernel's."""

    x: Any
    kernel: Any
    stride: Any
    padding: Any
    dilation: Any
    ceil_mode: bool
    is_max: bool


def parse_pool(args: Sequence[Any], is_max: bool) -> PoolArgs:
    stride = args[2] if len(args) > 2 and args[2] not in (None, [], ()) else None
    padding = args[3] if len(args) > 3 else 0
    if is_max:
        dilation = args[4] if len(args) > 4 else 1
        ceil_mode = bool(args[5]) if len(args) > 5 else False
    else:
        dilation = 1
        ceil_mode = bool(args[4]) if len(args) > 4 else False
    return PoolArgs(args[0], args[1], stride, padding, dilation, ceil_mode, is_max)


def _rank(name: str) -> int:
    return 3 if "3d" in name else (1 if "1d" in name else 2)


def pool_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """One FLOP (compare or add) per window element per output element."""
    kernel = args[1]
    window = prod(kernel) if isinstance(kernel, (list, tuple)) else int(kernel) ** 2
    return Cost(0, out_numel(outs) * window)


def read_pool(name: str, args: tuple, out_shapes: list, is_max: bool) -> dict[str, Any]:
    """Kernel, stride, padding, dilation; a pool's ceil mode and kind."""
    p = parse_pool(args, is_max)
    nd = _rank(name)
    kernel = as_tuple(p.kernel, nd)
    extra = {"ceil_mode": p.ceil_mode, "pool": "max" if is_max else "avg"}
    return {"kernel_size": kernel,
            "stride": kernel if p.stride is None else as_tuple(p.stride, nd),
            "padding": as_tuple(p.padding, nd), "dilation": as_tuple(p.dilation, nd),
            "extra": extra}


def pool_kernel(name: str, func, args: tuple, kwargs: dict, is_max: bool) -> Any:
    """max_pool{2,3}d_with_indices / avg_pool{2,3}d on meta: (out, indices) / out."""
    p = parse_pool(args, is_max)
    x = p.x
    nd = 3 if "3d" in name else 2
    if x.dim() not in (nd + 1, nd + 2):
        return NotImplemented

    def expand(v, default):
        v = default if v is None or (isinstance(v, (list, tuple)) and len(v) == 0) else v
        v = list(v) if isinstance(v, (list, tuple)) else [v]
        return v * nd if len(v) == 1 else v

    kernel = expand(p.kernel, None)
    stride = expand(p.stride, kernel)
    padding = expand(p.padding, 0)
    dilation = expand(p.dilation, 1)
    if not all(len(v) == nd for v in (kernel, stride, padding, dilation)):
        return NotImplemented
    if any(pad > k // 2 for pad, k in zip(padding, kernel)):
        return NotImplemented  # PyTorch raises "pad should be at most half of kernel size"
    spatial = [conv_output_size(n, k, s, pad, d, p.ceil_mode)
               for n, k, s, pad, d in zip(x.shape[-nd:], kernel, stride, padding, dilation)]
    if any(n < 1 for n in spatial):
        return NotImplemented  # PyTorch raises its own "too small" error
    out = empty(x, (*x.shape[:-nd], *spatial))
    if is_max:
        return out, torch.empty(out.shape, dtype=torch.int64, device="meta")
    return out


def adaptive_pool_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Adaptive pooling visits every input element once (exact for non-overlapping windows)."""
    return Cost(0, prod(args[0]))


def read_adaptive(name: str, args: tuple, out_shapes: list) -> dict[str, Any]:
    """Adaptive pooling: its geometry is its output size."""
    return {"extra": {"output_size": tuple(out_shapes[0][2:]), "adaptive": True}}


def avg_pool_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """avg_pool2d_backward(grad_out, input, kernel, ...): each gradient element is spread
    over its window: one per window element per gradient element."""
    kernel = args[2]
    window = prod(kernel) if isinstance(kernel, (list, tuple)) else int(kernel) ** 2
    return Cost(0, prod(args[0]) * window)


def adaptive_avg_pool_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """One per input-gradient element."""
    return Cost(0, out_numel(outs))


def _named(fn: Any, name: str) -> Any:
    fn.__name__ = name
    return fn


def _max(names: Any, **fields: Any):
    return entry(names, cost=pool_cost, geometry=_named(partial(read_pool, is_max=True),
                                                        "read_pool"),
                 rf=RfRule.WINDOW, **fields)


def _avg(names: Any, **fields: Any):
    return entry(names, cost=pool_cost, geometry=_named(partial(read_pool, is_max=False),
                                                        "read_pool"),
                 rf=RfRule.WINDOW, **fields)


def _adaptive(names: Any, **fields: Any):
    return entry(names, cost=adaptive_pool_cost, geometry=read_adaptive, rf=RfRule.ADAPTIVE,
                 **fields)


_MAX_BACKWARD = ("max_pool2d_with_indices_backward", "max_pool3d_with_indices_backward")
_AVG_BACKWARD = ("avg_pool2d_backward", "avg_pool3d_backward", "avg_pool1d_backward")
_ADAPTIVE_AVG_BACKWARD = ("_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d_backward")
_ADAPTIVE_MAX_BACKWARD = ("adaptive_max_pool2d_backward", "adaptive_max_pool3d_backward")

ENTRIES = (
    _max(("max_pool2d_with_indices", "max_pool3d_with_indices"), backward=_MAX_BACKWARD,
         meta=_named(partial(pool_kernel, is_max=True), "pool_kernel")),
    _max(("max_pool2d", "max_pool1d", "max_pool3d", "max_pool1d_with_indices",
          "mkldnn_max_pool2d"), backward=_MAX_BACKWARD),
    _avg(("avg_pool2d", "avg_pool3d"), backward=_AVG_BACKWARD,
         meta=_named(partial(pool_kernel, is_max=False), "pool_kernel")),
    _avg("avg_pool1d", backward=_AVG_BACKWARD),
    _adaptive(("_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d"),
              backward=_ADAPTIVE_AVG_BACKWARD, meta=resize_kernel),
    _adaptive("adaptive_avg_pool2d", backward=_ADAPTIVE_AVG_BACKWARD),
    _adaptive(("adaptive_max_pool2d", "adaptive_max_pool3d", "adaptive_max_pool1d"),
              backward=_ADAPTIVE_MAX_BACKWARD),
    entry(_MAX_BACKWARD + _ADAPTIVE_MAX_BACKWARD, cost=per_grad_element(1),
          backward=BACKWARD_IS_A_BACKWARD),
    entry(_AVG_BACKWARD, cost=avg_pool_backward_cost, backward=BACKWARD_IS_A_BACKWARD),
    entry(_ADAPTIVE_AVG_BACKWARD, cost=adaptive_avg_pool_backward_cost,
          backward=BACKWARD_IS_A_BACKWARD),
    entry(("MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "LPPool1d", "LPPool2d", "LPPool3d"), rf=RfRule.WINDOW),
    entry(("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
           "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"), rf=RfRule.ADAPTIVE),
)
