"""Paper spec tables through the API (``cnnscope spec``): ``spec_table``, ``spec_tables``.

The tables' arithmetic is ``cnnscope.analysis.spec``'s; each table is handed
``traced_zoo_model``, which traces a zoo model once per process.
"""

from __future__ import annotations

from functools import lru_cache

from cnnscope.analysis import spec as specs
from cnnscope.analysis.spec import SpecTable
from cnnscope.api.analyze_model import analyze
from cnnscope.trace.records import ModelReport


@lru_cache(maxsize=None)
def traced_zoo_model(name: str) -> ModelReport:
    """The meta-device trace of a zoo model at its default input (once per process)."""
    return analyze(name)


def spec_table(name: str) -> SpecTable:
    """One spec table by table or zoo model name (``resnet50`` -> the ResNet table)."""
    return specs.build(name, traced_zoo_model)


def spec_tables() -> list[SpecTable]:
    """Every spec table, in ``cnnscope.analysis.spec.table_names()`` order."""
    return specs.build_all(traced_zoo_model)
