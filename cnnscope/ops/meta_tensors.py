"""What every meta shape kernel shares: when a kernel may run, and making its result.

A kernel (``kernel(name, func, args, kwargs)``) gives an op's result from shapes alone, or
``NotImplemented`` to run the op normally; the entries of the registry name theirs. On the
meta device PyTorch runs Python meta kernels (decompositions) for batch norm and
elementwise ops: pure overhead for shape propagation, about 85% of a ResNet-152 trace.
"""

from __future__ import annotations

from typing import Any

import torch

FULL_FLOATS = {torch.float32, torch.float64}


def run_kernel(kernel, name: str, func, args: tuple, kwargs: dict) -> Any:
    """``kernel``'s result, or ``NotImplemented`` when the call is not one it may shortcut.

    Only for meta tensors (the first argument; a list of them for a kernel marked
    ``takes_tensor_list``, as ``cat``'s) and never for an ``out=`` call; the result has the
    shape and dtype the real meta kernel gives.
    """
    if kwargs.get("out") is not None or not args:
        return NotImplemented
    x = args[0]
    if isinstance(x, torch.Tensor):
        if x.device.type != "meta":
            return NotImplemented
    elif not getattr(kernel, "takes_tensor_list", False):
        return NotImplemented
    return kernel(name, func, args, kwargs)


def inplace(func) -> bool:
    """An in-place overload (``relu_``): its result is its first argument."""
    return func.overloadpacket.__name__.endswith("_")


def broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The broadcast of two shapes, None when they do not broadcast."""
    # torch.broadcast_shapes would import sympy (0.5 s) on its first call.
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            return None
        out.append(y if x == 1 else x)
    return tuple(out)


def empty_following(shape, like: torch.Tensor, *others: Any) -> torch.Tensor:
    """An elementwise result laid out as the CPU and CUDA kernels lay it out.

    TensorIterator gives the output the memory order of its inputs: a permuted input
    (``q * scale`` on a head-split view) gives a permuted output, and whether a later
    ``reshape`` is a free view or a copy (a row on one device and not on another) depends
    on it. The order is that of the first input of the output's shape, its dims sorted
    by stride (ties keep their order); contiguous when that input is.
    """
    shape = tuple(shape)
    for t in (like, *others):
        if isinstance(t, torch.Tensor) and tuple(t.shape) == shape:
            if t.is_contiguous():
                break
            order = sorted(range(len(shape)), key=lambda d: -t.stride(d))
            return torch.empty_strided(shape, dense_strides(shape, order), dtype=like.dtype,
                                       device="meta")
    return empty(like, shape)


def dense_strides(shape, order) -> tuple[int, ...]:
    """The strides of a dense tensor of ``shape`` whose dims run in ``order``, outermost
    first (``range(len(shape))``: contiguous)."""
    strides = [0] * len(shape)
    step = 1
    for d in reversed(tuple(order)):
        strides[d] = step
        step *= max(shape[d], 1)
    return tuple(strides)


def empty(like: torch.Tensor, shape) -> torch.Tensor:
    """A contiguous meta tensor of ``shape`` with ``like``'s dtype."""
    # torch.empty on meta is a C++ kernel; Tensor.new_empty goes through a Python ref.
    return torch.empty(tuple(shape), dtype=like.dtype, device="meta")
