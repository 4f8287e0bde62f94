"""``F.scaled_dot_product_attention`` as one record, the same on every device.

PyTorch runs one user-level call as different aten ops per device: the CPU's flash
kernel (``_scaled_dot_product_flash_attention_for_cpu``), CUDA's flash, memory-efficient
or cuDNN kernels, or the 16-op math path (scale, transpose, bmm, softmax, bmm...) on
meta, with dropout, or with autograd. Left alone, the same model then has different
rows, row names and even row counts per device: the fused kernels return their output
laid out as (B, L, H, Ev) and the math path as (B, H, L, Ev), so the ``reshape`` after
``transpose(1, 2)`` is a free view on one device and a copy on another.

So while a trace runs, the call is one record named ``scaled_dot_product_attention``
(one op identity per user-level op), costed by ``attention_cost`` from its arguments,
whichever kernel ran. Its 4-D output always has the fused kernels' layout: the math
path's result is re-laid out inside the record (uncounted), so what follows the call is
the same op on every device. On meta, without autograd, the call is one custom op with
a shape-only kernel (``cnnscope::scaled_dot_product_attention``): the math path's 16
meta ops would cost time for the same count.

Inside a ``torch.nn`` layer (``MultiheadAttention``) the call is part of that layer's
record and is left to PyTorch (the meta shortcut aside).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch

import cnnscope.patches as patches
from cnnscope.ops.meta_tensors import broadcast

NAME = "scaled_dot_product_attention"  # the one name of the op on every device

_sdpa_original = None
# The tracing thread's group runner (``TraceState.run_group``); other threads that call
# attention while the patch is installed run PyTorch's own function (or the meta op).
_local = threading.local()


def _sdpa_op():
    """``cnnscope::scaled_dot_product_attention``: one op with a shape-only meta kernel.

    Defined on first use (torch.library is not free to import). Its schema follows
    ``aten::scaled_dot_product_attention`` up to ``is_causal``, so the same cost formula
    reads it.
    """
    patches.once("cnnscope-op-library", _define_sdpa_op)
    return torch.ops.cnnscope.scaled_dot_product_attention.default


def _define_sdpa_op() -> Any:
    lib = torch.library.Library("cnnscope", "DEF")
    lib.define("scaled_dot_product_attention(Tensor query, Tensor key, Tensor value, "
               "Tensor? attn_mask=None, float dropout_p=0.0, bool is_causal=False) -> Tensor")

    def meta(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False):
        shape = (*query.shape[:-1], value.shape[-1])
        if len(shape) == 4:  # the fused kernels' layout: (B, L, H, Ev) transposed
            b, h, l, ev = shape
            return torch.empty((b, l, h, ev), dtype=query.dtype,
                               device="meta").transpose(1, 2)
        return torch.empty(shape, dtype=query.dtype, device="meta")

    lib.impl("scaled_dot_product_attention", meta, "Meta")
    return lib  # kept (by cnnscope.patches) for the process: the op lives as long


def fused_layout(out: torch.Tensor) -> torch.Tensor:
    """``out`` (B, H, L, Ev) with the strides of (B, L, H, Ev) transposed, as the fused
    kernels return it (CPU and CUDA flash, memory-efficient); a copy only when it differs."""
    if out.dim() != 4:
        return out
    b, h, l, ev = out.shape
    want = (l * h * ev, ev, h * ev, 1)
    if all(n == 1 or s == w for n, s, w in zip(out.shape, out.stride(), want)):
        return out
    return out.transpose(1, 2).contiguous().transpose(1, 2)


def _meta_shortcut(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa) -> bool:
    """True when the call can be the one meta op: meta tensors, no autograd, no dropout,
    no grouped heads, consistent shapes (anything else takes PyTorch's path)."""
    return (isinstance(query, torch.Tensor) and query.device.type == "meta"
            and isinstance(key, torch.Tensor) and isinstance(value, torch.Tensor)
            and key.device.type == "meta" and value.device.type == "meta"
            and not dropout_p and not enable_gqa and not torch.is_grad_enabled()
            and query.dim() >= 2 and query.dim() == key.dim() == value.dim()
            and query.shape[:-2] == key.shape[:-2] == value.shape[:-2]
            and query.shape[-1] == key.shape[-1] and key.shape[-2] == value.shape[-2]
            and query.dtype == key.dtype == value.dtype and query.is_floating_point()
            and (attn_mask is None or (isinstance(attn_mask, torch.Tensor)
                                       and attn_mask.device.type == "meta"
                                       and attn_mask.dtype in (torch.bool, query.dtype)
                                       and broadcast(tuple(attn_mask.shape),
                                                      (*query.shape[:-1], key.shape[-2]))
                                       == (*query.shape[:-1], key.shape[-2])))
            and not (is_causal and attn_mask is not None))


def _sdpa_traced(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                 scale=None, enable_gqa=False):
    """``F.scaled_dot_product_attention`` while a trace runs (see the module docstring)."""
    if _meta_shortcut(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa):
        return _sdpa_op()(query, key, value, attn_mask, 0.0, bool(is_causal))
    original = _sdpa_original

    def run():
        return original(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p,
                        is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)

    group: Callable | None = getattr(_local, "group", None)
    if group is None or not all(isinstance(t, torch.Tensor) for t in (query, key, value)):
        return run()
    # The arguments as the aten op's schema orders them: its cost formula reads these.
    schema_args = (query, key, value, attn_mask, float(dropout_p), bool(is_causal))
    return group(NAME, lambda: fused_layout(run()), schema_args)


@contextmanager
def one_op_attention(group: Callable[[str, Callable[[], Any], tuple], Any] | None = None
                     ) -> Iterator[None]:
    """While inside, ``F.scaled_dot_product_attention`` is one op (see the module docstring).

    ``group(name, run, schema_args)`` makes the record of a call that runs PyTorch's
    kernels (a real device, autograd, dropout) in this thread; without it only the meta
    shortcut applies.
    """
    outer = getattr(_local, "group", None)
    _local.group = group
    try:
        with _ONE_OP:
            yield
    finally:
        _local.group = outer


def _remember_original(below: Callable) -> Callable:
    global _sdpa_original
    _sdpa_original = below  # what _sdpa_traced runs when the call is not the meta op
    return _sdpa_traced


def _attention_swap() -> list:
    import torch.nn.functional as F

    return [patches.Swap(F, "scaled_dot_product_attention", _remember_original)]


_ONE_OP = patches.scoped("one-op-attention", _attention_swap)
