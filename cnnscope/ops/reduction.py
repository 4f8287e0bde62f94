"""Reductions, softmax, selection and sorting, and the overlap-add of col2im.

FLOPs: reductions (sum, mean, amax...) one per input element (an elementwise max/min of
two tensors: one per output element); vector norms 2 per input element (square + add)
plus a root per output; softmax 3 per element (exp, sum, divide), its backward 4;
selection and counting (nonzero, topk, unique) one comparison per input element;
sorting n elements n * ceil(log2 n) comparisons per row.
"""

from __future__ import annotations

from math import prod
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from cnnscope.ops.cost import Cost, Shape, out_numel, per_grad_element, tensor_args
from cnnscope.ops.entry import (
    BACKWARD_IS_A_BACKWARD,
    BACKWARD_NOT_DIFFERENTIABLE,
    BACKWARD_PASSES_THROUGH,
    RfRule,
    entry,
)
from cnnscope.ops.meta_tensors import FULL_FLOATS, empty

BACKWARD_SCATTERS = ("its gradient is the output gradient expanded or scattered back to "
                     "the input (data movement, free) and elementwise ops counted by theirs")


def reduction_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """One FLOP per input element (for a binary max/min: one per output element)."""
    tensors = tensor_args(args)
    if len(tensors) >= 2:  # aten.max(a, b) elementwise form
        return Cost(0, out_numel(outs))
    return Cost(0, prod(tensors[0]) if tensors else 0)


def norm_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Square and accumulate every input element (2 each), then one root per output."""
    return Cost(0, 2 * prod(args[0]) + out_numel(outs))


def softmax_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """exp, sum, divide: 3 per element."""
    return Cost(0, 3 * out_numel(outs))


def col2im_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Fold (col2im) sums overlapping patches: one add per input element."""
    return Cost(0, prod(args[0]))


def selection_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Selection and counting (nonzero, topk, unique...): one comparison per input element."""
    return Cost(0, prod(args[0]))


def sort_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Sorting n elements along a dim: n * ceil(log2 n) comparisons per sorted row."""
    x = args[0]
    if not x:
        return Cost(0, 0)
    dim = args[1] if len(args) > 1 and isinstance(args[1], int) else -1
    n = x[dim]
    rows = prod(x) // n if n else 0
    return Cost(0, rows * n * max(1, (n - 1).bit_length()))


def read_reduced_dims(name: str, args: tuple, out_shapes: list) -> dict[str, Any]:
    """mean/sum/amax/amin(x, dim, keepdim): the reduced dims."""
    if len(args) > 1:
        dims = args[1]
        return {"extra": {"dim": tuple(dims) if isinstance(dims, (list, tuple)) else dims}}
    return {}


def read_softmax_dim(name: str, args: tuple, out_shapes: list) -> dict[str, Any]:
    """_softmax(x, dim, half_to_float) and its relatives: the normalised dim."""
    if len(args) > 1:
        return {"extra": {"dim": int(args[1])}}
    return {}


def reduce_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """mean/sum(x, dims, keepdim) of a float tensor over a list of dims."""
    x = args[0]
    if not (len(args) >= 2 and isinstance(args[1], (list, tuple)) and x.is_floating_point()):
        return NotImplemented
    if kwargs.get("dtype") is not None:
        return NotImplemented
    dims = {d % x.dim() for d in args[1]}
    keep = bool(args[2]) if len(args) > 2 else False
    shape = [1 if i in dims else n for i, n in enumerate(x.shape) if keep or i not in dims]
    return empty(x, shape)


def softmax_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """_softmax(x, dim, half_to_float=False) on a float tensor."""
    x = args[0]
    if len(args) == 3 and args[2] is False and x.is_floating_point():
        return empty(x, x.shape)
    return NotImplemented


def safe_softmax_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """_safe_softmax(x, dim, dtype=None) on a full-precision tensor."""
    x = args[0]
    if len(args) >= 2 and x.dtype in FULL_FLOATS and (len(args) < 3 or args[2] is None) \
            and not kwargs:
        return empty(x, x.shape)
    return NotImplemented


def softmax_backward_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """_softmax_backward_data(grad, output, dim, input_dtype) where the input's dtype is the
    gradient's: the gradient's shape."""
    if len(args) < 4 or not isinstance(args[1], torch.Tensor) or args[3] != args[0].dtype \
            or args[1].dtype != args[0].dtype or tuple(args[1].shape) != tuple(args[0].shape):
        return NotImplemented
    return empty(args[0], args[0].shape)


def _reduce(names: Any, **fields: Any):
    return entry(names, cost=reduction_cost, rf=RfRule.REDUCE, backward=BACKWARD_SCATTERS,
                 **fields)


_SOFTMAX_BACKWARD = ("_softmax_backward_data", "_log_softmax_backward_data")


def _softmax(names: Any, **fields: Any):
    return entry(names, cost=softmax_cost, rf=RfRule.SOFTMAX, backward=_SOFTMAX_BACKWARD,
                 **fields)


ENTRIES = (
    _reduce("sum", geometry=read_reduced_dims, meta=reduce_kernel, autocast="fp32",
            torch_functions=(torch.sum, torch.Tensor.sum)),
    _reduce("mean", geometry=read_reduced_dims, meta=reduce_kernel),
    _reduce(("amax", "amin"), geometry=read_reduced_dims),
    _reduce(("max", "min", "prod", "argmax", "argmin", "logsumexp", "any", "all", "var", "std",
             "var_mean", "std_mean")),
    entry("cumsum", cost=reduction_cost, backward=BACKWARD_PASSES_THROUGH, autocast="fp32",
          torch_functions=(torch.cumsum,)),
    entry(("linalg_vector_norm", "norm", "frobenius_norm"), cost=norm_cost, rf=RfRule.REDUCE,
          backward=BACKWARD_PASSES_THROUGH, autocast="fp32",
          torch_functions=(F.normalize, torch.norm, torch.Tensor.norm)),
    _softmax("_softmax", geometry=read_softmax_dim, meta=softmax_kernel),
    _softmax(("softmax", "_log_softmax", "log_softmax"), geometry=read_softmax_dim,
             autocast="fp32", torch_functions=(F.softmax, F.log_softmax, torch.softmax,
                                               torch.log_softmax, torch.Tensor.softmax,
                                               torch.Tensor.log_softmax)),
    _softmax("_safe_softmax", meta=safe_softmax_kernel),
    entry(_SOFTMAX_BACKWARD, cost=per_grad_element(4), meta=softmax_backward_kernel,
          backward=BACKWARD_IS_A_BACKWARD),
    entry("col2im", cost=col2im_cost, rf=RfRule.OPAQUE_IF_SPATIAL, backward=BACKWARD_SCATTERS),
    entry(("nonzero", "argwhere", "masked_select", "_unique2", "unique", "_unique",
           "unique_dim", "unique_consecutive", "bincount", "histc"), cost=selection_cost,
          data_dependent=True, backward=BACKWARD_NOT_DIFFERENTIABLE),
    entry(("topk", "searchsorted", "bucketize"), cost=selection_cost,
          backward=BACKWARD_SCATTERS),
    entry(("sort", "argsort"), cost=sort_cost, backward=BACKWARD_SCATTERS),
    entry(("Softmax", "LogSoftmax", "Softmin"), rf=RfRule.SOFTMAX),
    entry("Softmax2d", rf=RfRule.POINTWISE),
)
