"""Elementwise ops: arithmetic, activations, comparisons, dropout, and the activations'
backward ops.

FLOPs: one per output element (training-mode dropout: 2, a mask and a scale). Backward:
ReLU/ReLU6/leaky ReLU/hardtanh/threshold 1 per element (a select); sigmoid/tanh 3
(y(1 - y)g, (1 - y²)g); other smooth activations (GELU, SiLU, ELU, softplus, mish,
hardswish, hardsigmoid, log-sigmoid) 4. The gradient of arithmetic (add, mul, div, exp...)
is elementwise arithmetic again, counted by these same entries.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from cnnscope.ops.cost import Cost, Shape, out_numel, per_grad_element
from cnnscope.ops.entry import (
    BACKWARD_IS_A_BACKWARD,
    BACKWARD_NOT_DIFFERENTIABLE,
    BACKWARD_PASSES_THROUGH,
    RfRule,
    entry,
)
from cnnscope.ops.meta_tensors import broadcast, empty_following, inplace


def elementwise_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """One FLOP per output element."""
    return Cost(0, out_numel(outs))


def dropout_train_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Training-mode dropout: draw a mask and scale: 2 per element (bernoulli: the draw
    of a dropout mask written as bernoulli + mul on some devices, also 2 per element)."""
    return Cost(0, 2 * out_numel(outs))


def unary_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """An activation or elementwise function of one tensor: same shape (in place: itself)."""
    x = args[0]
    return x if inplace(func) else empty_following(x.shape, x)


def binary_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """add/mul/... of two same-dtype meta tensors (broadcast) or a tensor and a number."""
    if len(args) < 2:
        return NotImplemented
    x, other = args[0], args[1]
    if isinstance(other, torch.Tensor):
        if other.device.type != "meta" or other.dtype != x.dtype:
            return NotImplemented  # leave type promotion to PyTorch
        shape = broadcast(tuple(x.shape), tuple(other.shape))
        if shape is None:
            return NotImplemented  # PyTorch raises the proper error
    elif isinstance(other, (int, float)) and not isinstance(other, bool) and x.is_floating_point():
        shape = x.shape
    else:
        return NotImplemented
    if inplace(func):
        return x if shape == x.shape else NotImplemented
    return empty_following(shape, x, other)


def grad_like_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """An activation's backward (``threshold_backward(grad, self, 0)``, ``sigmoid_backward
    (grad, output)``...): the gradient's shape and dtype, where the saved tensor after it
    has them too (anything else is left to PyTorch)."""
    grad = args[0]
    saved = args[1] if len(args) > 1 else None
    if not isinstance(saved, torch.Tensor) or saved.device.type != "meta" \
            or saved.dtype != grad.dtype or tuple(saved.shape) != tuple(grad.shape):
        return NotImplemented
    return empty_following(grad.shape, grad, saved)


def _pointwise(names: Any, **fields: Any):
    return entry(names, cost=elementwise_cost, rf=RfRule.POINTWISE, **fields)


_ONE = ("threshold_backward", "hardtanh_backward", "leaky_relu_backward",
        "rrelu_with_noise_backward")
_THREE = ("sigmoid_backward", "tanh_backward")
_FOUR = ("gelu_backward", "silu_backward", "elu_backward", "softplus_backward", "mish_backward",
         "hardswish_backward", "hardsigmoid_backward", "log_sigmoid_backward")

ENTRIES = (
    _pointwise(("relu", "relu6", "hardtanh", "sigmoid", "tanh", "gelu", "silu", "elu",
                "leaky_relu", "hardswish", "hardsigmoid", "mish", "softplus"),
               meta=unary_kernel, backward=_ONE + _THREE + _FOUR),
    _pointwise(("neg", "abs", "sqrt", "rsqrt"), meta=unary_kernel,
               backward=BACKWARD_PASSES_THROUGH),
    _pointwise("exp", meta=unary_kernel, backward=BACKWARD_PASSES_THROUGH, autocast="fp32",
               torch_functions=(torch.exp,)),
    _pointwise(("add", "sub", "rsub", "mul", "div"), meta=binary_kernel,
               backward=BACKWARD_PASSES_THROUGH),
    _pointwise("pow", meta=binary_kernel, backward=BACKWARD_PASSES_THROUGH, autocast="fp32",
               torch_functions=(torch.pow, torch.Tensor.pow)),
    _pointwise("log", backward=BACKWARD_PASSES_THROUGH, autocast="fp32",
               torch_functions=(torch.log,)),
    _pointwise(("selu", "celu", "threshold", "_prelu_kernel", "prelu", "log_sigmoid_forward",
                "hardshrink", "softshrink", "tanhshrink"), backward=_ONE + _FOUR),
    _pointwise(("sign", "reciprocal", "square", "log1p", "erf", "clamp", "clamp_min",
                "clamp_max", "maximum", "minimum", "where", "lerp", "addcmul", "addcdiv", "sin",
                "cos", "fmod", "remainder", "sgn", "log2", "log10", "exp2", "expm1", "atan",
                "atan2", "asin", "acos", "tan", "sinh", "cosh", "asinh", "acosh", "atanh",
                "erfc", "erfinv", "hypot", "xlogy", "logit", "nan_to_num"),
               backward=BACKWARD_PASSES_THROUGH),
    _pointwise(("floor", "ceil", "round", "eq", "ne", "gt", "lt", "ge", "le", "logical_not",
                "bitwise_not", "bitwise_and", "bitwise_or", "bitwise_xor", "logical_and",
                "logical_or", "logical_xor", "isnan", "isinf", "isfinite", "trunc", "frac",
                "floor_divide"), backward=BACKWARD_NOT_DIFFERENTIABLE),
    entry("native_dropout", cost=dropout_train_cost, rf=RfRule.POINTWISE,
          backward=("native_dropout_backward",)),
    entry("bernoulli", cost=dropout_train_cost, backward=BACKWARD_NOT_DIFFERENTIABLE),
    entry(_ONE, cost=per_grad_element(1), meta=grad_like_kernel, backward=BACKWARD_IS_A_BACKWARD),
    entry(_THREE, cost=per_grad_element(3), meta=grad_like_kernel,
          backward=BACKWARD_IS_A_BACKWARD),
    entry(_FOUR, cost=per_grad_element(4), meta=grad_like_kernel,
          backward=BACKWARD_IS_A_BACKWARD),
    entry(("ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "SiLU",
           "Mish", "Sigmoid", "Tanh", "Hardtanh", "Hardswish", "Hardsigmoid", "Softplus",
           "Softsign", "Softshrink", "Hardshrink", "Tanhshrink", "Threshold", "LogSigmoid",
           "GLU", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
           "FeatureAlphaDropout", "Identity"), rf=RfRule.POINTWISE),
)
