"""The zoo summary: one row per registered model, counted on the meta device."""

from __future__ import annotations

from dataclasses import dataclass


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


def zoo_rows(pattern: str = "*", family: str | None = None, *, counts: bool = True) -> list[ZooRow]:
    """Rows for every model matching ``pattern``/``family``; params and MACs when ``counts``."""
    from cnnscope.api import analyze
    from cnnscope.zoo import list_models, model_info

    rows = []
    for name in list_models(pattern, family):
        info = model_info(name)
        report = analyze(name) if counts else None
        rows.append(ZooRow(
            name=name, family=info.family, year=info.year, paper=info.paper, dataset=info.dataset,
            input_size=info.input_size,
            params=report.totals.params if report else None,
            macs=report.totals.macs if report else None,
            reference_params=info.reference_params, reference_source=info.reference_source,
        ))
    return rows
