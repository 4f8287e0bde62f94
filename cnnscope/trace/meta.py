"""Making the meta device fast: skip weight initialisation, shortcut slow meta kernels.

On the meta device nothing is computed, but PyTorch still runs Python "meta kernels"
(decompositions) for batch norm and elementwise ops, and Python ``nn.init`` code for
every weight. Both are pure overhead for shape propagation: about 85% of a ResNet-152
trace and 70% of its build. Here, batch norm and elementwise ops get their output
shapes directly (the shape kernels below; the op table, ``trace.ops``, says which op
uses which), and ``nn.init`` is a no-op while a model is built on meta.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.conv import _ConvNd

import cnnscope.patches as patches
from cnnscope.trace.outsize import conv_output_size, transposed_output_size

#: The initialisation functions of ``torch.nn.init`` (the in-place ones, ``*_``).
INIT_FUNCTIONS = [name for name in dir(torch.nn.init)
                  if name.endswith("_") and not name.startswith("_")]


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside, and none owed for it afterwards.

    Building or tracing makes tens of thousands of objects (modules, records, meta
    tensors) that live on; each collection they would trigger rescans every older object
    (15% of a zoo trace). Re-enabling the collector afterwards would make the first
    allocation scan them all at once (14 ms for ResNet-152's trace), so they are moved to
    the oldest generation first (``gc.freeze`` then ``gc.unfreeze``), where they are
    checked at the next full collection, like any long-lived object. When the program has
    frozen objects of its own (a pre-fork server does), they are left as they are and
    the collection is simply paid.
    """
    with GC_PAUSED:
        yield


def _pause_gc() -> bool:
    was_enabled = gc.isenabled()
    gc.disable()
    return was_enabled


def _resume_gc(was_enabled: bool) -> None:
    if was_enabled:
        if gc.get_freeze_count() == 0:
            patches.for_process("objects-aged", _age_objects)
        gc.enable()


def _age_objects() -> None:
    gc.freeze()
    gc.unfreeze()


GC_PAUSED = patches.scoped("gc-paused", install=_pause_gc, remove=_resume_gc,
                           observe=gc.isenabled)


@contextmanager
def building_on(device: torch.device | str) -> Iterator[None]:
    """``with torch.device(device)``; on meta, with the shortcuts of a lean build.

    On meta there are no initial values to set, so ``torch.nn.init.*_`` and torch's
    ``reset_parameters`` skip meta tensors, ``nn.Module.__setattr__`` stores plain values
    directly, and the garbage collector waits. The shortcuts are installed while at
    least one meta build runs (counted under a lock, so threads and nesting are safe);
    each one still does the full work for a tensor that is not on meta, so a CPU model
    built by another thread at the same moment is initialised as usual.
    """
    dev = torch.device(device)
    if dev.type != "meta":
        with dev:
            yield
        return
    with _SHORTCUTS, dev, paused_gc():
        yield


def _init_unless_meta(init: Any) -> Any:
    def init_unless_meta(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(tensor, "is_meta", False):
            return tensor  # a meta tensor has no values to set
        return init(tensor, *args, **kwargs)

    return init_unless_meta


def _reset_unless_meta(reset: Any) -> Any:
    def reset_unless_meta(self: nn.Module) -> None:
        for t in (*self._parameters.values(), *self._buffers.values()):
            if t is not None and not t.is_meta:
                return reset(self)
        return None

    return reset_unless_meta


_PLAIN_VALUES = {int, float, bool, str, tuple, type(None)}
_module_setattr = torch.nn.Module.__setattr__


def _plain_setattr(self: torch.nn.Module, name: str, value: Any) -> None:
    """``nn.Module.__setattr__`` with a shortcut for plain values (strides, channel counts).

    A layer's constructor sets a dozen of these; the full method checks each against
    Parameter, Module and Buffer (a third of a model's build time) only to store it as a
    plain attribute. That is what this does directly, when the name is not already a
    parameter, buffer or submodule; anything else takes the full method.
    """
    if type(value) in _PLAIN_VALUES:
        d = self.__dict__
        if not (name in d.get("_parameters", ()) or name in d.get("_buffers", ())
                or name in d.get("_modules", ())):
            object.__setattr__(self, name, value)
            return
    _module_setattr(self, name, value)


# Methods of torch's layers that only set initial values: on meta there are none to set,
# and their tensor arithmetic (fan-in, bounds, fill_) is a quarter of a build.
RESETS = [(_ConvNd, "reset_parameters"), (nn.Linear, "reset_parameters"),
          (_NormBase, "reset_running_stats"), (_NormBase, "reset_parameters"),
          (nn.GroupNorm, "reset_parameters"), (nn.LayerNorm, "reset_parameters")]


_SHORTCUTS = patches.scoped("meta-build-shortcuts", [
    *(patches.Swap(torch.nn.init, name, _init_unless_meta) for name in INIT_FUNCTIONS),
    patches.Swap(torch.nn.Module, "__setattr__", lambda full: _plain_setattr),
    *(patches.Swap(cls, attr, _reset_unless_meta) for cls, attr in RESETS)])


# ---------------------------------------------------------------------- shape kernels
# One kernel per kind of op: ``kernel(name, func, args, kwargs)`` -> the result built from
# shapes alone, or NotImplemented to run the op normally. Which op gets which kernel is
# written in the op table (``trace.ops``); ``run_kernel`` checks what all of them assume.

_FULL_FLOATS = {torch.float32, torch.float64}


def run_kernel(kernel, name: str, func, args: tuple, kwargs: dict) -> Any:
    """``kernel``'s result, or ``NotImplemented`` when the call is not one it may shortcut.

    Only for meta tensors (the first argument; a list of them for ``cat``) and never
    for an ``out=`` call; the result has the shape and dtype the real meta kernel gives.
    """
    if kwargs.get("out") is not None or not args:
        return NotImplemented
    x = args[0]
    if isinstance(x, torch.Tensor):
        if x.device.type != "meta":
            return NotImplemented
    elif kernel is not cat_kernel:
        return NotImplemented
    return kernel(name, func, args, kwargs)


def _inplace(func) -> bool:
    return func.overloadpacket.__name__.endswith("_")


def cat_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """cat(tensors, dim)."""
    tensors = args[0]
    if not isinstance(tensors, (list, tuple)) or kwargs:
        return NotImplemented
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


def conv_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
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
        spatial = [transposed_output_size(n, k, s, p, d, op) for n, k, s, p, d, op in
                   zip(x.shape[2:], kernel, stride, padding, dilation, output_padding)]
    else:
        if x.shape[1] != w.shape[1] * groups:
            return NotImplemented
        c_out = w.shape[0]
        spatial = [conv_output_size(n, k, s, p, d) for n, k, s, p, d in
                   zip(x.shape[2:], kernel, stride, padding, dilation)]
    if any(n < 1 for n in spatial):
        return NotImplemented  # PyTorch raises its own "too small" error
    return _empty(x, (x.shape[0], c_out, *spatial))


def pool_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """max_pool{2,3}d_with_indices(x, k, s, p, d, ceil) / avg_pool{2,3}d(x, k, s, p, ceil, ...)."""
    x = args[0]
    nd = 3 if "3d" in name else 2
    if x.dim() not in (nd + 1, nd + 2):
        return NotImplemented

    def expand(v, default):
        v = default if v is None or (isinstance(v, (list, tuple)) and len(v) == 0) else v
        v = list(v) if isinstance(v, (list, tuple)) else [v]
        return v * nd if len(v) == 1 else v

    kernel = expand(args[1], None)
    stride = expand(args[2] if len(args) > 2 else None, kernel)
    padding = expand(args[3] if len(args) > 3 else 0, 0)
    if name.startswith("max"):
        dilation = expand(args[4] if len(args) > 4 else 1, 1)
        ceil_mode = bool(args[5]) if len(args) > 5 else False
    else:
        dilation = [1] * nd
        ceil_mode = bool(args[4]) if len(args) > 4 else False
    if not all(len(v) == nd for v in (kernel, stride, padding, dilation)):
        return NotImplemented
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        return NotImplemented  # PyTorch raises "pad should be at most half of kernel size"
    spatial = [conv_output_size(n, k, s, p, d, ceil_mode)
               for n, k, s, p, d in zip(x.shape[-nd:], kernel, stride, padding, dilation)]
    if any(n < 1 for n in spatial):
        return NotImplemented  # PyTorch raises its own "too small" error
    out = _empty(x, (*x.shape[:-nd], *spatial))
    if name.startswith("max"):
        return out, torch.empty(out.shape, dtype=torch.int64, device="meta")
    return out


def resize_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """Ops whose output spatial size is an argument: upsample_*.default, adaptive pools."""
    x = args[0]
    size = args[1] if len(args) > 1 else None
    if func._overloadname != "default" or not isinstance(size, (list, tuple)) or not size:
        return NotImplemented  # the .vec overloads take scale factors: let PyTorch resolve them
    if not all(isinstance(n, int) and n >= 1 for n in size) or x.dim() < len(size) + 1:
        return NotImplemented
    if any(n == 0 for n in x.shape[x.dim() - len(size):]):
        return NotImplemented  # PyTorch raises on an empty input map
    if "upsample" in name and x.dim() != len(size) + 2:
        return NotImplemented
    return _empty(x, (*x.shape[:x.dim() - len(size)], *size))


def pad_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """constant_pad_nd(x, pad, value): pad pairs run from the last dimension backwards."""
    if len(args) < 2:
        return NotImplemented
    x, pad = args[0], args[1]
    if not isinstance(pad, (list, tuple)) or len(pad) % 2 or len(pad) // 2 > x.dim():
        return NotImplemented
    shape = list(x.shape)
    for i in range(len(pad) // 2):
        dim = x.dim() - 1 - i
        shape[dim] += pad[2 * i] + pad[2 * i + 1]
    if any(n < 1 for n in shape):
        return NotImplemented  # PyTorch decides what an emptied or negative size means
    return _empty(x, shape)


def softmax_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """_softmax(x, dim, half_to_float=False) on a float tensor."""
    x = args[0]
    if len(args) == 3 and args[2] is False and x.is_floating_point():
        return _empty(x, x.shape)
    return NotImplemented


def safe_softmax_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """_safe_softmax(x, dim, dtype=None) on a full-precision tensor."""
    x = args[0]
    if len(args) >= 2 and x.dtype in _FULL_FLOATS and (len(args) < 3 or args[2] is None) \
            and not kwargs:
        return _empty(x, x.shape)
    return NotImplemented


def layer_norm_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """native_layer_norm(x, normalized_shape, ...) -> (out, mean, rstd)."""
    x = args[0]
    if len(args) < 2 or x.dtype not in _FULL_FLOATS:
        return NotImplemented
    # the statistics keep the leading dims, 1 for each normalised one
    n = len(args[1])
    if not 0 < n <= x.dim() or tuple(x.shape[x.dim() - n:]) != tuple(args[1]):
        return NotImplemented  # PyTorch raises the proper error
    stats = (*x.shape[:x.dim() - n], *(1,) * n)
    return _empty(x, x.shape), _empty(x, stats), _empty(x, stats)


def roll_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """roll: a permutation of the elements, same layout."""
    x = args[0]
    if x.is_contiguous() and not kwargs:
        return _empty(x, x.shape)
    return NotImplemented


def index_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """index(x, [idx]): a gather along dim 0 by an integer index tensor."""
    x = args[0]
    if not (len(args) == 2 and isinstance(args[1], (list, tuple)) and len(args[1]) == 1
            and x.dim() >= 1 and x.is_contiguous()):
        return NotImplemented
    idx = args[1][0]
    if isinstance(idx, torch.Tensor) and idx.device.type == "meta" \
            and idx.dtype in (torch.int64, torch.int32):
        return _empty(x, (*idx.shape, *x.shape[1:]))  # gather along dim 0
    return NotImplemented  # a boolean mask is data-dependent: PyTorch decides


def batch_norm_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """native_batch_norm and relatives -> (out, save_mean, save_invstd)."""
    x = args[0]
    c = x.shape[1] if x.dim() > 1 else 0
    stats = _empty(x, (c,)) if len(args) > 5 and args[5] is True else _empty(x, (0,))
    return _empty(x, x.shape), stats, _empty(x, stats.shape)


def unary_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """An activation or elementwise function of one tensor: same shape (in place: itself)."""
    x = args[0]
    return x if _inplace(func) else _empty_following(x.shape, x)


def addmm_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """addmm(bias, a, b) = bias + a @ b."""
    x = args[0]
    if len(args) < 3 or _inplace(func):
        return NotImplemented
    a, b = args[1], args[2]
    if a.dim() == 2 and b.dim() == 2 and a.shape[1] == b.shape[0] and a.dtype == b.dtype == x.dtype:
        return _empty(a, (a.shape[0], b.shape[1]))
    return NotImplemented


def like_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """zeros_like/ones_like/empty_like(x) with nothing that changes dtype or device."""
    x = args[0]
    if len(args) != 1:
        return NotImplemented
    if any(v is not None and k not in ("memory_format", "pin_memory") for k, v in kwargs.items()
           if not (k == "dtype" and v == x.dtype) and not (k == "device" and v == x.device)):
        return NotImplemented
    return _empty_following(x.shape, x)  # preserve_format, the default


def matmul_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """mm(a, b) / bmm(a, b)."""
    if len(args) != 2 or not isinstance(args[1], torch.Tensor):
        return NotImplemented
    a, b = args[0], args[1]
    nd = 2 if name == "mm" else 3
    if (a.dim() == b.dim() == nd and a.shape[-1] == b.shape[-2] and a.dtype == b.dtype
            and b.device.type == "meta" and (nd == 2 or a.shape[0] == b.shape[0])):
        return _empty(a, (*a.shape[:-1], b.shape[-1]))
    return NotImplemented


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
    return _empty(x, shape)


def binary_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """add/mul/... of two same-dtype meta tensors (broadcast) or a tensor and a number."""
    if len(args) < 2:
        return NotImplemented
    x, other = args[0], args[1]
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
    if _inplace(func):
        return x if shape == x.shape else NotImplemented
    return _empty_following(shape, x, other)


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


def _empty_following(shape, like: torch.Tensor, *others: Any) -> torch.Tensor:
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
            strides = [0] * len(shape)
            step = 1
            for d in reversed(order):
                strides[d] = step
                step *= max(shape[d], 1)
            return torch.empty_strided(shape, strides, dtype=like.dtype, device="meta")
    return _empty(like, shape)


def _empty(like: torch.Tensor, shape) -> torch.Tensor:
    # torch.empty on meta is a C++ kernel; Tensor.new_empty goes through a Python ref.
    return torch.empty(tuple(shape), dtype=like.dtype, device="meta")
