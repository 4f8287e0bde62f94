"""The short name the registry knows an op by: ``aten.relu_.default`` -> ``relu``."""

from __future__ import annotations

import re
from typing import Any

# Families read by pattern (every aten upsample op, whatever its rank or variant).
UPSAMPLE_RE = re.compile(r"^_?upsample_")

_NAMES: dict[Any, str] = {}  # op overload -> short name: op_name runs on every traced op


def op_name(func) -> str:
    """``aten.relu_.default`` -> ``relu``: the packet name without the in-place suffix."""
    name = _NAMES.get(func)
    if name is None:
        name = func.overloadpacket.__name__
        if name.endswith("_") and not name.endswith("__"):
            name = name[:-1]
        _NAMES[func] = name
    return name


def op_name_of(target: Any) -> str:
    """The name of an op given by name (``"mylib::my_scan"``) or as an op object
    (``torch.ops.mylib.my_scan``), as ``op_name`` gives it when the op is traced."""
    packet = getattr(target, "overloadpacket", target)
    name = getattr(packet, "__name__", None) if not isinstance(target, str) else target
    if not isinstance(name, str) or not name:
        raise TypeError(f"cannot register a formula for {target!r}: give an op name, an op "
                        "(torch.ops.NS.NAME) or an nn.Module subclass")
    name = name.split("::")[-1].split(".")[0]
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return name


def as_tuple(v: Any, n: int | None = None) -> tuple[int, ...] | None:
    """An int or a list of ints as a tuple of ``n`` ints (an int repeated)."""
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        return tuple(int(x) for x in v)
    return (int(v),) * (n or 1)
