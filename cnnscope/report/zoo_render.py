"""Renderers of the zoo summary (rows from ``analysis.zoo_table``)."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from typing import Sequence

from cnnscope.report.io import strict_json
from cnnscope.report.units import human, shape, thousands
from cnnscope.trace.records import CONVENTION

HEADER = ("name", "family", "year", "dataset", "input", "params", "MACs")


def render_rich(rows: Sequence, console) -> None:
    from rich.table import Table

    table = Table(title=f"cnnscope zoo ({len(rows)} models)", header_style="bold")
    for col in HEADER:
        table.add_column(col, justify="right" if col in ("year", "params", "MACs") else "left")
    for r in rows:
        table.add_row(r.name, r.family, str(r.year), r.dataset, shape(r.input_size),
                      human(r.params) if r.params is not None else "-",
                      human(r.macs) if r.macs is not None else "-")
    console.print(table)
    console.print("MACs at the default input, batch 1. " + CONVENTION, highlight=False, markup=False)


def to_csv(rows: Sequence) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "family", "year", "paper", "dataset", "input_size", "params", "macs",
                "reference_params", "reference_source"])
    for r in rows:
        w.writerow([r.name, r.family, r.year, r.paper, r.dataset, shape(r.input_size),
                    r.params, r.macs, r.reference_params or "", r.reference_source or ""])
    return buf.getvalue()


def to_json(rows: Sequence) -> str:
    return strict_json({"convention": CONVENTION, "models": [asdict(r) for r in rows]}, indent=2) + "\n"


def to_markdown(rows: Sequence) -> str:
    out = ["| model | family | paper | year | input | params | MACs |",
           "| --- | --- | --- | ---: | --- | ---: | ---: |"]
    for r in rows:
        out.append(f"| `{r.name}` | {r.family} | {r.paper} | {r.year} | {shape(r.input_size)} | "
                   f"{thousands(r.params)} | {human(r.macs)} |")
    return "\n".join(out) + "\n"
