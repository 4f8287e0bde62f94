"""The op registry: every entry of every family, by name, and the one way to ask it.

``lookup(name)`` gives the ``OpEntry`` of an aten op's short name or a torch.nn layer's
type name (a dict lookup, once per traced op); every alias of an entry gives the same
object. ``register_formula`` adds users' cost formulas (``FORMULAS``, which tells the
table of every change, however it is written) and module formulas.

Where to add an op: an ``entry(...)`` in its family's module (``conv.py``, ``pool.py``...);
a new family is a new module with an ``ENTRIES`` tuple, named once in ``FAMILIES`` below.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Sequence

from cnnscope.ops import (
    attention,
    conv,
    detection,
    elementwise,
    linear,
    loss,
    norm,
    pool,
    reduction,
    resize,
    rnn,
    shape,
)
from cnnscope.ops.cost import Cost, Formula, Shape, as_cost, free
from cnnscope.ops.entry import BACKWARD_IS_A_BACKWARD, OpEntry
from cnnscope.ops.meta_tensors import run_kernel
from cnnscope.ops.names import UPSAMPLE_RE, op_name_of

#: The family modules, each with its ``ENTRIES``. A new family is one line here.
FAMILIES = (conv, linear, pool, norm, attention, elementwise, shape, resize, reduction,
            detection, rnn, loss)
# The families whose ops slide a window (``WINDOWED = True`` in the module): each of their
# forward ops needs a geometry reader and a receptive-field rule.
WINDOWED_FAMILIES = tuple(f for f in FAMILIES if getattr(f, "WINDOWED", False))


def build_index(families: Sequence[Any]) -> dict[str, OpEntry]:
    """Every alias of every entry; a name in two entries is an error."""
    table: dict[str, OpEntry] = {}
    for family in families:
        for e in family.ENTRIES:
            for name in e.names:
                if name in table:
                    raise ValueError(f"op registry: {name!r} is in two entries "
                                     f"({table[name].name!r} and {e.name!r})")
                table[name] = e
    return table


#: The built-in entries by name (users' formulas aside).
ENTRIES: dict[str, OpEntry] = build_index(FAMILIES)


class _Registry(dict):
    """A dict that tells its listeners which name changed, however it is written
    (``register_formula``, or a test restoring an entry by hand): the table (``OPS``)
    must not go stale."""

    def __init__(self) -> None:
        super().__init__()
        self.listeners: list[Callable[[str], None]] = []

    def _changed(self, *names: str) -> None:
        for listener in self.listeners:
            for name in names:
                listener(name)

    def __setitem__(self, name: str, formula: Formula) -> None:
        super().__setitem__(name, formula)
        self._changed(name)

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        self._changed(name)

    def pop(self, name: str, *default: Any) -> Any:
        had = name in self
        value = super().pop(name, *default)
        if had:
            self._changed(name)
        return value

    def setdefault(self, name: str, formula: Formula) -> Formula:  # type: ignore[override]
        if name not in self:
            self[name] = formula
        return self[name]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for name, formula in dict(*args, **kwargs).items():
            self[name] = formula

    def popitem(self) -> tuple[str, Formula]:
        name, formula = super().popitem()
        self._changed(name)
        return name, formula

    def clear(self) -> None:
        names = list(self)
        super().clear()
        self._changed(*names)

    def __reduce__(self) -> Any:  # a copy or a pickle is a plain dict; listeners stay here
        return (dict, (dict(self),))


#: Cost formulas by op name: the entries' own (data movement and views aside: they are
#: free whatever is written here) and the ones users register.
FORMULAS: _Registry = _Registry()
for _name, _entry in ENTRIES.items():
    if _entry.cost is not None and _entry.cost is not free:
        dict.__setitem__(FORMULAS, _name, _entry.cost)

#: Every op known, by name: the built-in entries, with users' formulas in place.
OPS: dict[str, OpEntry] = dict(ENTRIES)


def _resolve(name: str) -> OpEntry | None:
    base = ENTRIES.get(name)
    if base is None and UPSAMPLE_RE.match(name):
        base = resize.UPSAMPLE_FAMILY
    formula = FORMULAS.get(name)
    if base is not None and (base.cost is free or formula is base.cost):
        return base  # free wins over a formula of the same name, as it always has
    if formula is None:  # a built-in formula removed by hand
        return None if base is None else replace(base, names=(name,), cost=None,
                                                 cost_wants_kwargs=False)
    return replace(base or OpEntry((name,)), names=(name,), cost=formula,
                   cost_wants_kwargs=bool(getattr(formula, "wants_kwargs", False)))


def _refresh(name: str) -> None:
    """Rebuild one name's entry (a formula was registered, replaced or removed)."""
    resolved = _resolve(name)
    if resolved is None:
        OPS.pop(name, None)
    else:
        OPS[name] = resolved


FORMULAS.listeners.append(_refresh)


def lookup(name: str) -> OpEntry | None:
    """Everything known about op (or layer type) ``name``; None when nothing is."""
    spec = OPS.get(name)
    if spec is None and UPSAMPLE_RE.match(name):  # a family member not listed
        spec = resize.UPSAMPLE_FAMILY
    return spec


# ---------------------------------------------------------------------- uses of one entry


def op_cost(spec: OpEntry | None, args: Sequence[Any], outs: Sequence[Shape],
            kwargs: dict | None = None) -> Cost | None:
    """The entry's cost (``None``: no formula, an unsupported op).

    ``args`` and ``kwargs`` have every tensor as a ``TensorShape``; ``kwargs`` reach only
    formulas that read them (the attention ops, whose mask may be keyword-only).
    """
    if spec is None or spec.cost is None:
        return None
    if spec.cost_wants_kwargs:
        return spec.cost(args, outs, kwargs)  # type: ignore[call-arg]
    return spec.cost(args, outs)


def geometry(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """Kernel/stride/padding/dilation/groups and extras of a geometry-bearing op."""
    spec = lookup(name)
    if spec is None or spec.geometry is None:
        return {}
    return spec.geometry(name, args, out_shapes)


def meta_shortcut(spec: OpEntry | None, name: str, func, args: tuple, kwargs: dict) -> Any:
    """The result of the op of entry ``spec`` computed from shapes alone by its shape
    kernel, or ``NotImplemented`` to run it normally (no kernel, or a call it may not
    shortcut). What the forward trace and the backward counter both ask for each op."""
    if spec is None or spec.meta is None:
        return NotImplemented
    return run_kernel(spec.meta, name, func, args, kwargs)


def fast_meta_op(name: str, func, args: tuple, kwargs: dict) -> Any:
    """``meta_shortcut`` for the op named ``name``."""
    return meta_shortcut(lookup(name), name, func, args, kwargs)


def exact_meta_op(name: str, func, args: tuple, kwargs: dict) -> Any:
    """``fast_meta_op`` where the entry's kernel is exact to the stride (``meta_exact``),
    else ``NotImplemented``: what the memory planner asks for each op."""
    spec = lookup(name)
    if spec is None or not spec.meta_exact:
        return NotImplemented
    return meta_shortcut(spec, name, func, args, kwargs)


def describe(name: str) -> dict[str, Any]:
    """The entry as plain names (for reading the table, e.g. in a REPL or a test)."""
    spec = lookup(name)
    if spec is None:
        return {"name": name}
    return {
        "name": name,
        "entry": spec.name,
        "cost": None if spec.cost is None else spec.cost.__name__,
        "backward": spec.backward,
        "shape_only": spec.shape_only,
        "geometry": None if spec.geometry is None else spec.geometry.__name__,
        "rf": None if spec.rf is None else spec.rf.value,
        "meta": None if spec.meta is None else spec.meta.__name__,
        "meta_exact": spec.meta_exact,
        "no_window": spec.no_window,
        "data_dependent": spec.data_dependent,
        "weighted": spec.weighted,
        "autocast": spec.autocast,
        "fvcore": spec.fvcore,
    }


def autocast_functions(kind: str) -> frozenset:
    """The torch functions autocast runs in the low precision (``"low"``) or in float32."""
    return frozenset(f for e in set(ENTRIES.values()) if e.autocast == kind
                     for f in e.torch_functions)


def fvcore_mac_operators() -> frozenset[str]:
    """fvcore's operator keys that are multiply-accumulates (cnnscope's MACs)."""
    return frozenset(e.fvcore for e in ENTRIES.values() if e.fvcore)


# ---------------------------------------------------------------------- user formulas

#: Cost formulas for whole modules, by class: ``fn(module, input_shapes, output_shapes)``.
#: An instance of such a class is one layer (its inner ops are not counted separately).
MODULE_FORMULAS: dict[type, Callable[..., Any]] = {}
_USER_OPS: set[str] = set()  # op names registered by register_formula (replaceable)
_revision = [0]  # bumped on every registration: the tracer's layer memo starts afresh


def formulas_revision() -> tuple[int, int]:
    """A value that changes whenever a formula is registered, replaced or removed."""
    return _revision[0], len(FORMULAS)


def register_formula(target: Any, formula: Callable[..., Any] | None = None, *,
                     replace: bool = False) -> Any:
    """Register the cost of your own op or module; usable as a decorator.

    ``target`` is one of:

    - an op: its name (``"my_scan"``, ``"mylib::my_scan"``) or the op object
      (``torch.ops.mylib.my_scan``). ``formula(args, out_shapes)`` gets the op's
      positional arguments with every tensor replaced by its shape (a tuple) and the
      shapes of its tensor outputs;
    - an ``nn.Module`` subclass. ``formula(module, input_shapes, output_shapes)`` gets
      the module; each instance becomes one layer whose cost is the formula's, whatever
      ops its forward runs (its parameters, submodules' included, are its own).

    The formula returns ``(macs, flops)`` (or a ``Cost``). A built-in formula is replaced
    only with ``replace=True``; one you registered before is replaced silently (a script
    run twice). Returns the formula.
    """
    if formula is None:
        return lambda fn: register_formula(target, fn, replace=replace)
    if not callable(formula):
        raise TypeError("register_formula needs a callable formula")
    if isinstance(target, type):
        MODULE_FORMULAS[target] = formula
        _revision[0] += 1
        return formula
    name = op_name_of(target)
    base = ENTRIES.get(name)
    built_in = (base is not None and base.cost is not None) \
        or (name in FORMULAS and name not in _USER_OPS)
    if built_in and not replace:
        raise ValueError(f"{name!r} already has a built-in cost formula; pass replace=True "
                         "to use yours instead")

    def user_formula(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
        return as_cost(formula(args, outs), name, formula)

    user_formula.__doc__ = formula.__doc__
    FORMULAS[name] = user_formula
    _USER_OPS.add(name)
    _revision[0] += 1
    return formula


def module_cost(module: Any, input_shapes: Sequence[Shape],
                output_shapes: Sequence[Shape]) -> Cost | None:
    """The registered formula's cost for ``module``, or None when its class has none."""
    for cls in type(module).__mro__:
        formula = MODULE_FORMULAS.get(cls)
        if formula is not None:
            return as_cost(formula(module, list(input_shapes), list(output_shapes)),
                           type(module).__name__, formula)
    return None


def has_module_formula(module: Any) -> bool:
    """True when ``module``'s class (or a base class) has a registered formula."""
    return bool(MODULE_FORMULAS) and any(c in MODULE_FORMULAS for c in type(module).__mro__)


# ---------------------------------------------------------------------- invariants
# What every entry must hold; tests/ops/test_registry_invariants.py runs each check on the
# registry and on an entry made to break it.


def names_in_two_entries(families: Sequence[Any] = FAMILIES) -> list[str]:
    """Names given by more than one entry (``build_index`` refuses them at import)."""
    seen: dict[str, int] = {}
    for family in families:
        for e in family.ENTRIES:
            for name in e.names:
                seen[name] = seen.get(name, 0) + 1
    return sorted(name for name, n in seen.items() if n > 1)


def windows_without_geometry(entries: Sequence[OpEntry]) -> list[str]:
    """Windowed forward ops that lack a geometry reader or a receptive-field rule.

    ``entries``: those of the windowed families and any with the rule WINDOW or ADAPTIVE.
    A torch.nn layer's entry takes its geometry from its ops; a backward op has no window
    of its own.
    """
    return [e.name for e in entries
            if not e.is_layer and e.backward != BACKWARD_IS_A_BACKWARD
            and (e.geometry is None or e.rf is None)]


def forward_costs_without_backward(entries: Sequence[OpEntry],
                                   table: dict[str, OpEntry]) -> list[str]:
    """Entries with a cost whose ``backward`` is neither a reason nor backward ops that
    have a cost of their own."""
    bad = []
    for e in entries:
        if e.cost is None:
            continue
        if isinstance(e.backward, str):
            ok = bool(e.backward.strip())
        else:
            ok = bool(e.backward) and all(
                table.get(n) is not None and table[n].cost is not None for n in e.backward)
        if not ok:
            bad.append(e.name)
    return bad


def kernels_without_cost(entries: Sequence[OpEntry]) -> list[str]:
    """Entries with a meta kernel but no cost (a shortcut for an op that is never counted)."""
    return [e.name for e in entries if e.meta is not None and e.cost is None]
