"""Tensor helpers the tracer runs on every op: shapes, bytes, views, nested arguments."""

from __future__ import annotations

from typing import Any, Iterable

import torch

from cnnscope.ops.cost import TensorShape


def shape_of(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)  # torch.Size is a tuple of ints


_VIEW_OPS: dict[Any, bool] = {}


def is_view_op(func) -> bool:
    """True for an aten op whose output is a view of an input (its schema says the result
    aliases an argument without writing it: slice, select, view, expand...). In-place ops
    (``relu_``, ``add_``) write their alias and do move data."""
    known = _VIEW_OPS.get(func)
    if known is None:
        try:
            returns = func._schema.returns
            known = bool(returns) and all(
                r.alias_info is not None and not r.alias_info.is_write for r in returns)
        except AttributeError:
            known = False
        _VIEW_OPS[func] = known
    return known


def tensor_bytes(tensors: Iterable[torch.Tensor | None]) -> int:
    """Bytes of the distinct tensors given, at their own dtype (a tensor passed twice, as
    in ``x * x``, is read once: the minimal-traffic convention of ``bytes_moved``)."""
    seen: set[int] = set()
    total = 0
    for t in tensors:
        if t is not None and id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def tensors_in(obj: Any) -> list[torch.Tensor]:
    """Tensors in a nest of tuples/lists/dicts (a lean tree_flatten: this runs per op)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    out: list[torch.Tensor] = []
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            out.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
    return out


def shape_args(args: tuple) -> tuple:
    """Positional args with tensors replaced by TensorShape (lists of tensors kept as lists)."""
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(TensorShape(shape_of(a)))
        elif isinstance(a, (list, tuple)) and a and all(isinstance(x, torch.Tensor) for x in a):
            out.append([TensorShape(shape_of(x)) for x in a])
        else:
            out.append(a)
    return tuple(out)
