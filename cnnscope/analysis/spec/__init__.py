"""Paper spec tables recomputed from traced models (``cnnscope spec MODEL``).

Each module builds one ``SpecTable`` from the records of meta-device traces, which its
``build(trace)`` asks of the tracer it is given (``cnnscope.api.spec_table`` passes
``analyze``); the paper's printed values are reference data shown beside them, and every
difference is flagged with the arithmetic behind it.

    >>> from cnnscope.api import spec_table
    >>> spec_table("googlenet").flags[0].reason[:32]
    'params: 7x7x3x64 = 9,408 weights'
"""

from __future__ import annotations

from typing import Any, Callable

from cnnscope.analysis.spec.common import Flag, SpecTable, Tracer  # noqa: F401
from cnnscope.errors import UnknownModelError

# Table key -> module holding its ``build()``; the order is the order of ``--all``.
_MODULES = {
    "googlenet": "googlenet",
    "resnet": "resnet",
    "densenet": "densenet",
    "vgg": "vgg",
    "mobilenet_v2": "mobilenet_v2",
}
# A zoo model of these families gets its family's table (resnet50 -> resnet).
_FAMILY_TABLES = {"GoogLeNet": "googlenet", "ResNet": "resnet", "DenseNet": "densenet",
                  "VGG": "vgg"}


def table_names() -> list[str]:
    """The spec tables, in the order ``--all`` writes them."""
    return list(_MODULES)


def resolve_table(name: str, zoo: Any = None) -> str:
    """A table key from a table name or a zoo model name (``resnet50`` -> ``resnet``).

    ``zoo`` (``cnnscope.api.traced_zoo_model``) answers ``zoo.info(name)``: a zoo model's
    registry entry, None for a name the zoo does not have. Without it only table names
    are known.
    """
    key = name.strip().lower()
    if key in _MODULES:
        return key
    info = zoo.info(key) if zoo is not None else None
    if info is not None:
        table = _FAMILY_TABLES.get(info.family)
        if table:
            return table
        raise UnknownModelError(f"no spec table for {name!r} (family {info.family})",
                                "tables: " + ", ".join(_MODULES))
    raise UnknownModelError(f"no spec table for {name!r}", "tables: " + ", ".join(_MODULES))


def builder(name: str, zoo: Any = None) -> Callable[[Tracer], SpecTable]:
    import importlib

    module = importlib.import_module(f"cnnscope.analysis.spec.{_MODULES[resolve_table(name, zoo)]}")
    return module.build


def build(name: str, trace: Tracer) -> SpecTable:
    """Build one spec table by table or model name from the reports ``trace`` gives."""
    return builder(name, trace)(trace)


def build_all(trace: Tracer) -> list[SpecTable]:
    """Every spec table, in ``table_names()`` order."""
    return [build(n, trace) for n in table_names()]
