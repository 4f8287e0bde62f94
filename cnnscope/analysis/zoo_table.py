"""The zoo summary: one row per registered model, counted on the meta device."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cnnscope.results import Shown
from cnnscope.trace.records import CONVENTION, ModelReport


@dataclass(frozen=True)
class ZooRow:
    name: str
    family: str
    year: int
    paper: str
    dataset: str
    input_size: tuple[int, int, int]
    params: int | None
    macs: int | None
    reference_params: int | None
    reference_source: str | None


@dataclass(frozen=True)
class ZooTable(Shown):
    """The rows of ``cnnscope zoo``, as one result (``cnnscope.api.zoo_table``)."""

    rows: tuple[ZooRow, ...]
    convention: str = CONVENTION

    def to_dict(self) -> dict[str, Any]:
        return {"convention": self.convention, "models": [asdict(r) for r in self.rows]}


def zoo_row(info: Any, report: ModelReport | None) -> ZooRow:
    """One model's row from its registry entry (``cnnscope.zoo.ModelInfo``) and, when
    counted, its meta-device trace (``cnnscope.api.zoo_rows`` makes both)."""
    return ZooRow(
        name=info.name, family=info.family, year=info.year, paper=info.paper,
        dataset=info.dataset, input_size=info.input_size,
        params=report.totals.params if report else None,
        macs=report.totals.macs if report else None,
        reference_params=info.reference_params, reference_source=info.reference_source,
    )
