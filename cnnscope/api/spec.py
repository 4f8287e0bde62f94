"""Paper spec tables through the API (``cnnscope spec``): ``spec_table``, ``spec_tables``.

The tables' arithmetic is ``cnnscope.analysis.spec``'s; each table is handed
``traced_zoo_model``, which traces a zoo model once per process.
"""

from __future__ import annotations

from typing import Any

from cnnscope.analysis import spec as specs
from cnnscope.analysis.spec import SpecTable
from cnnscope.api.analyze_model import analyze
from cnnscope.trace.records import ModelReport


class ZooTraces:
    """A zoo model's meta-device trace at its default input, traced once per process, and
    (``info``) its registry entry: what ``cnnscope.analysis.spec``'s tables are handed."""

    def __init__(self) -> None:
        self._reports: dict[str, ModelReport] = {}

    def __call__(self, name: str) -> ModelReport:
        if name not in self._reports:
            self._reports[name] = analyze(name)
        return self._reports[name]

    def info(self, name: str) -> Any:
        """The registry entry (``cnnscope.zoo.ModelInfo``) of a zoo model; None if unknown."""
        from cnnscope.zoo import list_models, model_info

        return model_info(name) if name in list_models() else None


traced_zoo_model = ZooTraces()


def spec_table(name: str) -> SpecTable:
    """One spec table by table or zoo model name (``resnet50`` -> the ResNet table)."""
    return specs.build(name, traced_zoo_model)


def spec_tables() -> list[SpecTable]:
    """Every spec table, in ``cnnscope.analysis.spec.table_names()`` order."""
    return specs.build_all(traced_zoo_model)
