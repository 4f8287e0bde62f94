"""Normalisation: batch, layer, group and instance norm, and local response norm.

FLOPs: batch norm 2 per element at inference (a folded scale and shift), 4 in training
(batch statistics + normalisation); layer/group/instance norm 4 (mean, variance, scale,
shift). Backward: 2 per input element to recompute the normalised input x̂ (when any
gradient needs it), 3 for the weight and bias gradients (sum g, sum g·x̂), and for the
input gradient 4 in training (scale · (g - mean g - x̂ · mean g·x̂)), 1 in eval
(g · scale); layer/group norm as batch norm in training.
"""

from __future__ import annotations

from math import prod
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from cnnscope.ops.cost import Cost, Shape, TensorShape, out_numel
from cnnscope.ops.entry import BACKWARD_IS_A_BACKWARD, RfRule, entry
from cnnscope.ops.meta_tensors import FULL_FLOATS, dense_strides, empty


def batch_norm_eval_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Inference batch norm folds into one scale and one shift: 2 per element."""
    return Cost(0, 2 * out_numel(outs))


def batch_norm_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Batch norm: 2 per element with running statistics (eval), 4 when it computes them.

    aten.native_batch_norm(input, weight, bias, running_mean, running_var, training, ...).
    """
    training = args[5] if len(args) > 5 and isinstance(args[5], bool) else True
    return Cost(0, (4 if training else 2) * out_numel(outs))


def norm_with_statistics_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Normalisation with statistics from the data: mean, variance, scale, shift: 4 per element."""
    return Cost(0, 4 * out_numel(outs))


def _mask(value: Any, n: int = 3) -> list[bool]:
    if isinstance(value, (list, tuple)) and len(value) == n:
        return [bool(v) for v in value]
    return [True] * n


def _norm_backward(x: TensorShape, mask: list[bool], training: bool) -> Cost:
    n = prod(x)
    flops = 0
    if mask[1] or mask[2] or (mask[0] and training):
        flops += 2 * n  # x̂ = (x - mean) * invstd
        flops += 3 * n  # sum g and sum g·x̂ (the weight and bias gradients need nothing more)
    if mask[0]:
        flops += 4 * n if training else n
    return Cost(0, flops)


def batch_norm_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """native_batch_norm_backward(grad_out, input, weight, running_mean, running_var,
    save_mean, save_invstd, train, eps, output_mask)."""
    training = bool(args[7]) if len(args) > 7 and isinstance(args[7], bool) else True
    return _norm_backward(args[1], _mask(args[9] if len(args) > 9 else None), training)


def layer_norm_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """native_layer_norm_backward(grad_out, input, normalized_shape, mean, rstd, weight,
    bias, output_mask): statistics from the data, as batch norm in training."""
    return _norm_backward(args[1], _mask(args[7] if len(args) > 7 else None), True)


def group_norm_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """native_group_norm_backward(grad_out, input, mean, rstd, weight, N, C, HxW, group,
    output_mask)."""
    return _norm_backward(args[1], _mask(args[9] if len(args) > 9 else None), True)


def _batch_norm_call(name: str, func, args: tuple) -> tuple | None:
    """(input, weight, bias, running_mean, running_var, training) of a batch-norm op, None
    for an argument layout not read here."""
    if name == "_native_batch_norm_legit_no_training" and len(args) >= 5:
        return (*args[:5], False)  # (input, weight, bias, running_mean, running_var, momentum, eps)
    if name == "_native_batch_norm_legit" and getattr(func, "_overloadname", "") == "no_stats":
        return (args[0], args[1], args[2], None, None, args[3]) if len(args) >= 4 else None
    if name in ("native_batch_norm", "_native_batch_norm_legit") and len(args) >= 6:
        return tuple(args[:6])
    return None


_CHANNELS_LAST_ORDER = {4: (0, 2, 3, 1), 5: (0, 2, 3, 4, 1)}


def _standard_layout(x: torch.Tensor) -> bool:
    """Laid out contiguous or channels-last to the stride, size-1 dims included: what
    ``empty_like`` keeps as it is, as the elementwise steps of PyTorch's batch-norm
    decompositions keep it (other strides for a size-1 dim are not kept)."""
    shape, stride = tuple(x.shape), x.stride()
    if stride == dense_strides(shape, range(len(shape))):
        return True
    order = _CHANNELS_LAST_ORDER.get(len(shape))
    return order is not None and stride == dense_strides(shape, order)


def _laid_out_as(x: torch.Tensor) -> torch.Tensor:
    """What ``empty_like`` gives for an ``x`` in a standard layout: its shape, strides and
    dtype. (On meta, empty_like is a Python reference whose first call imports sympy.)"""
    return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="meta")


def _per_channel(t: Any, channels: int) -> bool:
    return t is None or (isinstance(t, torch.Tensor) and tuple(t.shape) == (channels,))


def _computation_dtype(dtype: torch.dtype) -> torch.dtype:
    """What batch norm computes its statistics in: float32 for the half types."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def batch_norm_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """native_batch_norm and relatives -> (out, save_mean, save_invstd), as PyTorch's meta
    kernel (its decomposition) gives them: the output in the input's dtype and layout; the
    statistics (C,) in the computation dtype, in training and in eval alike (the CPU
    kernel's are (0,) in eval, in the input's dtype: not on meta). Declines what PyTorch
    would refuse or lay out otherwise (an odd layout, a missing or misshapen statistic)."""
    call = _batch_norm_call(name, func, args)
    if call is None:
        return NotImplemented
    x, weight, bias, running_mean, running_var, training = call
    if not isinstance(training, bool) or x.dim() < 2 or not x.is_floating_point() \
            or x.numel() == 0 or not _standard_layout(x):
        return NotImplemented
    channels = x.shape[1]
    if not all(_per_channel(t, channels) for t in (weight, bias, running_mean, running_var)):
        return NotImplemented
    if training and running_var is not None and x.numel() // channels < 2:
        return NotImplemented  # an unbiased variance of one value: PyTorch raises
    if not training and (running_mean is None or running_var is None):
        return NotImplemented  # eval needs the running statistics: PyTorch raises
    stats = _computation_dtype(x.dtype)
    return (_laid_out_as(x), torch.empty((channels,), dtype=stats, device="meta"),
            torch.empty((channels,), dtype=stats, device="meta"))


def batch_norm_backward_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """native_batch_norm_backward(grad_out, input, weight, running_mean, running_var,
    save_mean, save_invstd, train, eps, output_mask) -> (grad_input, grad_weight, grad_bias)
    as PyTorch's meta kernel gives them: the input gradient always, in the input's dtype and
    layout; the weight and bias gradients where the mask asks, in the weight's dtype (the
    input's without a weight). Declines a gradient laid out unlike the input (PyTorch's
    result then follows both) and what PyTorch would refuse."""
    if name != "native_batch_norm_backward" or len(args) < 10:
        return NotImplemented  # cudnn/miopen/batch_norm_backward: other layouts
    grad_out, x, weight, running_mean, running_var, save_mean, save_invstd, train = args[:8]
    if not isinstance(grad_out, torch.Tensor) or x.dim() < 2 \
            or not isinstance(weight, (torch.Tensor, type(None))) or not isinstance(train, bool):
        return NotImplemented
    if grad_out.shape != x.shape or grad_out.stride() != x.stride() or not _standard_layout(x):
        return NotImplemented
    if (train and (save_mean is None or save_invstd is None)) \
            or (not train and (running_mean is None or running_var is None)):
        return NotImplemented  # PyTorch raises
    mask = _mask(args[9])
    param = (x.shape[1],)
    like = weight if weight is not None else x
    return (_laid_out_as(x), empty(like, param) if mask[1] else None,
            empty(like, param) if mask[2] else None)


def layer_norm_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """native_layer_norm(x, normalized_shape, ...) -> (out, mean, rstd)."""
    x = args[0]
    if len(args) < 2 or x.dtype not in FULL_FLOATS:
        return NotImplemented
    # the statistics keep the leading dims, 1 for each normalised one
    n = len(args[1])
    if not 0 < n <= x.dim() or tuple(x.shape[x.dim() - n:]) != tuple(args[1]):
        return NotImplemented  # PyTorch raises the proper error
    stats = (*x.shape[:x.dim() - n], *(1,) * n)
    return empty(x, x.shape), empty(x, stats), empty(x, stats)


_BN_BACKWARD = ("native_batch_norm_backward", "cudnn_batch_norm_backward",
                "miopen_batch_norm_backward", "batch_norm_backward")

ENTRIES = (
    entry("_native_batch_norm_legit_no_training", cost=batch_norm_eval_cost, rf=RfRule.POINTWISE,
          meta=batch_norm_kernel, meta_exact=True, backward=_BN_BACKWARD),
    entry(("native_batch_norm", "_native_batch_norm_legit"), cost=batch_norm_cost,
          rf=RfRule.POINTWISE, meta=batch_norm_kernel, meta_exact=True, backward=_BN_BACKWARD),
    entry(("batch_norm", "_batch_norm_impl_index", "cudnn_batch_norm"), cost=batch_norm_cost,
          rf=RfRule.POINTWISE, backward=_BN_BACKWARD),
    entry("native_layer_norm", cost=norm_with_statistics_cost, rf=RfRule.LAYER_NORM,
          meta=layer_norm_kernel, backward=("native_layer_norm_backward",), autocast="fp32",
          torch_functions=(F.layer_norm,)),
    entry("native_group_norm", cost=norm_with_statistics_cost, rf=RfRule.CONTEXT,
          backward=("native_group_norm_backward",), autocast="fp32",
          torch_functions=(F.group_norm,)),
    entry("instance_norm", cost=norm_with_statistics_cost, rf=RfRule.CONTEXT,
          backward=("native_batch_norm_backward",)),
    entry(_BN_BACKWARD, cost=batch_norm_backward_cost, meta=batch_norm_backward_kernel,
          meta_exact=True, backward=BACKWARD_IS_A_BACKWARD),
    entry("native_layer_norm_backward", cost=layer_norm_backward_cost,
          backward=BACKWARD_IS_A_BACKWARD),
    entry("native_group_norm_backward", cost=group_norm_backward_cost,
          backward=BACKWARD_IS_A_BACKWARD),
    entry(("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LazyBatchNorm1d",
           "LazyBatchNorm2d", "LazyBatchNorm3d"), rf=RfRule.POINTWISE),
    entry(("GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
           "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d"), rf=RfRule.CONTEXT),
    entry("LayerNorm", rf=RfRule.LAYER_NORM),
    # LRN pools over channels: its inner ops' windows are not its own.
    entry(("LocalResponseNorm", "CrossMapLRN2d"), rf=RfRule.POINTWISE, no_window=True),
)
