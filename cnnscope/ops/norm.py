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
from cnnscope.ops.meta_tensors import FULL_FLOATS, empty


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


def batch_norm_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """native_batch_norm and relatives -> (out, save_mean, save_invstd)."""
    x = args[0]
    c = x.shape[1] if x.dim() > 1 else 0
    stats = empty(x, (c,)) if len(args) > 5 and args[5] is True else empty(x, (0,))
    return empty(x, x.shape), stats, empty(x, stats.shape)


def batch_norm_backward_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """native_batch_norm_backward(grad_out, input, weight, ..., output_mask) -> (grad_input,
    grad_weight, grad_bias) as PyTorch's meta kernel gives them: the input gradient always,
    the weight and bias gradients where the mask asks, in the weight's dtype."""
    if name != "native_batch_norm_backward" or len(args) < 10:
        return NotImplemented  # cudnn/miopen/batch_norm_backward: other layouts
    x, weight = args[1], args[2]
    mask = _mask(args[9])
    if x.dim() < 2 or not isinstance(weight, (torch.Tensor, type(None))):
        return NotImplemented
    param = (x.shape[1],)
    like = weight if weight is not None else x
    return (empty(x, x.shape), empty(like, param) if mask[1] else None,
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
          meta=batch_norm_kernel, backward=_BN_BACKWARD),
    entry(("native_batch_norm", "_native_batch_norm_legit"), cost=batch_norm_cost,
          rf=RfRule.POINTWISE, meta=batch_norm_kernel, backward=_BN_BACKWARD),
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
          backward=BACKWARD_IS_A_BACKWARD),
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
