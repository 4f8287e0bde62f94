"""What a cost formula reads and returns: ``TensorShape`` arguments, a ``Cost``, and the check
every user formula's result passes.

``register_formula`` lets users count their own ops; their result goes into the totals,
the tables and the lock files, so it is checked here before anything adds it up.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass
from math import prod
from typing import Any, Callable, Sequence

from cnnscope.errors import FormulaError


@dataclass(frozen=True)
class Cost:
    macs: int = 0
    flops: int = 0

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.macs + other.macs, self.flops + other.flops)


MAX_COST = 2**63 - 1  # counts are int64 downstream (torch, pandas, JSON readers, locks)


def as_cost(value: Any, what: str, formula: Any = None) -> Cost:
    """A user formula's result as a ``Cost``, or a ``FormulaError`` naming the op and formula.

    MACs and FLOPs are counts: non-negative integers below 2**63. An integral float
    (``2.0 * n``) is taken; a fraction, NaN, infinity, a negative, a bool or 2**70 would
    be truncated, printed or locked as is, so each is refused.
    """
    name = getattr(formula, "__name__", None) \
        or type(formula).__name__
    where = f"the formula for {what} ({name})"
    if isinstance(value, Cost):
        pair: Any = (value.macs, value.flops)
    else:
        try:
            pair = tuple(itertools.islice(iter(value), 3))  # an endless iterator is not a pair
        except TypeError:
            pair = ()
    if len(pair) != 2:
        raise FormulaError(f"{where} returned {_short_repr(value)}; return (macs, flops) "
                         "or a cnnscope Cost")
    counts = []
    for label, item in zip(("MACs", "FLOPs"), pair):
        count = _count_of(item)
        if count is None or not 0 <= count <= MAX_COST:
            raise FormulaError(f"{where} returned {label} = {_short_repr(item)}; MACs and FLOPs "
                             "must be non-negative integers below 2**63",
                             "fix the formula (an integral float such as 2.0 is fine)")
        counts.append(count)
    return Cost(counts[0], counts[1])


def _count_of(item: Any) -> int | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, float):
        return int(item) if item == item and abs(item) != float("inf") and item.is_integer() \
            else None
    try:
        return operator.index(item)  # int, numpy integers, torch SymInt on concrete shapes
    except TypeError:
        return None


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a user object whose repr fails is still refused
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:40] + "..." + text[-12:]


class TensorShape(tuple):
    """The shape of a tensor argument (a tuple subclass, so it reads like a shape).

    A cost formula gets an op's positional arguments with every tensor replaced by one.
    """

    @property
    def numel(self) -> int:
        return prod(self)


Shape = tuple[int, ...]
Formula = Callable[[Sequence[Any], Sequence[Shape]], Cost]
ZERO = Cost(0, 0)


def free(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Data movement and views: no arithmetic."""
    return ZERO


def out_numel(outs: Sequence[Shape]) -> int:
    """Elements of the first output (0 when the op returns no tensor)."""
    return prod(outs[0]) if outs else 0


def tensor_args(args: Sequence[Any]) -> list[TensorShape]:
    """The tensor arguments' shapes, in order."""
    return [a for a in args if isinstance(a, TensorShape)]


def per_grad_element(n: int) -> Formula:
    """A backward formula: ``n`` FLOPs per element of the gradient (the first argument)."""

    def cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
        return Cost(0, n * prod(args[0]))

    cost.__doc__ = f"{n} FLOP(s) per gradient element."
    return cost
