"""Making the meta device fast: skip weight initialisation, shortcut slow meta kernels.

On the meta device nothing is computed, but PyTorch still runs Python "meta kernels"
(decompositions) for batch norm and elementwise ops, and Python ``nn.init`` code for
every weight. Both are pure overhead for shape propagation: about 85% of a ResNet-152
trace and 70% of its build. Here, batch norm and elementwise ops get their output
shapes directly, and ``nn.init`` is a no-op while a model is built on meta.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

_INIT_FUNCTIONS = [name for name in dir(torch.nn.init)
                   if name.endswith("_") and not name.startswith("_")]


@contextmanager
def building_on(device: torch.device | str) -> Iterator[None]:
    """``with torch.device(device)``, and on meta, ``torch.nn.init.*_`` do nothing.

    Initial values of meta tensors do not exist, so initialising them only burns time.
    """
    dev = torch.device(device)
    if dev.type != "meta":
        with dev:
            yield
        return
    saved = {name: getattr(torch.nn.init, name) for name in _INIT_FUNCTIONS}
    try:
        for name in _INIT_FUNCTIONS:
            setattr(torch.nn.init, name, _no_init)
        with dev:
            yield
    finally:
        for name, fn in saved.items():
            setattr(torch.nn.init, name, fn)


def _no_init(tensor: Any, *args: Any, **kwargs: Any) -> Any:
    return tensor


_UNARY = {"relu", "relu6", "hardtanh", "sigmoid", "tanh", "gelu", "silu", "elu", "leaky_relu",
          "hardswish", "hardsigmoid", "mish", "softplus", "neg", "abs", "exp", "sqrt", "rsqrt"}
_BINARY = {"add", "sub", "mul", "div", "pow"}
_BATCH_NORM = {"native_batch_norm", "_native_batch_norm_legit_no_training",
               "_native_batch_norm_legit"}


def _fast_cat(args: tuple) -> Any:
    tensors = args[0]
    dim = args[1] if len(args) > 1 else 0
    if not tensors or not all(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in tensors):
        return NotImplemented
    first = tensors[0]
    if any(t.dim() != first.dim() or t.dtype != first.dtype for t in tensors):
        return NotImplemented  # legacy empty-tensor and promotion rules: let PyTorch decide
    dim = dim % first.dim()
    for t in tensors[1:]:
        if any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != dim):
            return NotImplemented  # PyTorch raises the proper error
    shape = list(first.shape)
    shape[dim] = sum(t.shape[dim] for t in tensors)
    return _empty(first, shape)


def _fast_conv(args: tuple) -> Any:
    """aten.convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)."""
    if len(args) < 9:
        return NotImplemented
    x, w, _, stride, padding, dilation, transposed, output_padding, groups = args[:9]
    nd = w.dim() - 2
    if (x.dim() != nd + 2 or w.device.type != "meta" or w.dtype != x.dtype
            or not all(isinstance(v, (list, tuple)) and len(v) == nd
                       for v in (stride, padding, dilation, output_padding))):
        return NotImplemented
    groups = int(groups)
    kernel = w.shape[2:]
    if transposed:
        if x.shape[1] != w.shape[0]:
            return NotImplemented
        c_out = w.shape[1] * groups
        spatial = [(n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, p, d, op in
                   zip(x.shape[2:], kernel, stride, padding, dilation, output_padding)]
    else:
        if x.shape[1] != w.shape[1] * groups:
            return NotImplemented
        c_out = w.shape[0]
        spatial = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in
                   zip(x.shape[2:], kernel, stride, padding, dilation)]
    if any(n < 1 for n in spatial):
        return NotImplemented  # PyTorch raises its own "too small" error
    return _empty(x, (x.shape[0], c_out, *spatial))


def _pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    # PyTorch's pooling_output_shape: ceil mode may not start a window in the padding.
    span = n + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _fast_pool2d(name: str, args: tuple) -> Any:
    """max_pool2d_with_indices(x, k, s, p, d, ceil) / avg_pool2d(x, k, s, p, ceil, ...)."""
    x = args[0]
    if x.dim() not in (3, 4):
        return NotImplemented

    def pair(v, default):
        v = default if v is None or (isinstance(v, (list, tuple)) and len(v) == 0) else v
        v = list(v) if isinstance(v, (list, tuple)) else [v]
        return v * 2 if len(v) == 1 else v

    kernel = pair(args[1], None)
    stride = pair(args[2] if len(args) > 2 else None, kernel)
    padding = pair(args[3] if len(args) > 3 else 0, 0)
    if name.startswith("max"):
        dilation = pair(args[4] if len(args) > 4 else 1, 1)
        ceil_mode = bool(args[5]) if len(args) > 5 else False
    else:
        dilation = [1, 1]
        ceil_mode = bool(args[4]) if len(args) > 4 else False
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        return NotImplemented  # PyTorch raises "pad should be at most half of kernel size"
    spatial = [_pool_out(n, k, s, p, d, ceil_mode)
               for n, k, s, p, d in zip(x.shape[-2:], kernel, stride, padding, dilation)]
    if any(n < 1 for n in spatial):
        return NotImplemented  # PyTorch raises its own "too small" error
    out = _empty(x, (*x.shape[:-2], *spatial))
    if name.startswith("max"):
        return out, torch.empty(out.shape, dtype=torch.int64, device="meta")
    return out


def fast_meta_op(name: str, func, args: tuple, kwargs: dict) -> Any:
    """The op's result computed from shapes alone, or ``NotImplemented`` to run it normally.

    Only for meta tensors and only for ops whose output shape is obvious; the result
    has the same shape and dtype the real meta kernel gives.
    """
    if kwargs.get("out") is not None or not args:
        return NotImplemented
    if name == "cat" and isinstance(args[0], (list, tuple)) and not kwargs:
        return _fast_cat(args)
    if not isinstance(args[0], torch.Tensor):
        return NotImplemented
    x = args[0]
    if x.device.type != "meta":
        return NotImplemented
    inplace = func.overloadpacket.__name__.endswith("_")
    if name == "convolution":
        return _fast_conv(args)
    if name in ("max_pool2d_with_indices", "avg_pool2d"):
        return _fast_pool2d(name, args)
    if name in _BATCH_NORM:
        c = x.shape[1] if x.dim() > 1 else 0
        stats = _empty(x, (c,)) if len(args) > 5 and args[5] is True else _empty(x, (0,))
        return _empty(x, x.shape), stats, _empty(x, stats.shape)
    if name in _UNARY:
        return x if inplace else _empty(x, x.shape)
    if name == "addmm" and len(args) >= 3 and not inplace:
        a, b = args[1], args[2]
        if a.dim() == 2 and b.dim() == 2 and a.shape[1] == b.shape[0] and a.dtype == b.dtype == x.dtype:
            return _empty(a, (a.shape[0], b.shape[1]))
        return NotImplemented
    if name == "mean" and len(args) >= 2 and isinstance(args[1], (list, tuple)) and x.is_floating_point():
        if kwargs.get("dtype") is not None:
            return NotImplemented
        dims = {d % x.dim() for d in args[1]}
        keep = bool(args[2]) if len(args) > 2 else False
        shape = [1 if i in dims else n for i, n in enumerate(x.shape) if keep or i not in dims]
        return _empty(x, shape)
    if name in _BINARY and len(args) >= 2:
        other = args[1]
        if isinstance(other, torch.Tensor):
            if other.device.type != "meta" or other.dtype != x.dtype:
                return NotImplemented  # leave type promotion to PyTorch
            shape = _broadcast(tuple(x.shape), tuple(other.shape))
            if shape is None:
                return NotImplemented  # PyTorch raises the proper error
        elif isinstance(other, (int, float)) and not isinstance(other, bool) and x.is_floating_point():
            shape = x.shape
        else:
            return NotImplemented
        if inplace:
            return x if shape == x.shape else NotImplemented
        return _empty(x, shape)
    return NotImplemented


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    # torch.broadcast_shapes would import sympy (0.5 s) on its first call.
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            return None
        out.append(y if x == 1 else x)
    return tuple(out)


def _empty(like: torch.Tensor, shape) -> torch.Tensor:
    # torch.empty on meta is a C++ kernel; Tensor.new_empty goes through a Python ref.
    return torch.empty(tuple(shape), dtype=like.dtype, device="meta")
