"""What ``cnnscope zoo`` shows (``analysis.zoo_table.ZooTable``) as a ``Document``.

The table shows sizes in human units; the Markdown table (reports/zoo.md, pasted into
docs/zoo.md) cites each paper and gives exact parameter counts; the CSV has every field.
"""

from __future__ import annotations

import cnnscope.results as results
from cnnscope.analysis.zoo_table import ZooRow, ZooTable
from cnnscope.report.document import Column, Document, Section, cell, row
from cnnscope.units import human, shape, thousands


BRIEF = ("MACs at the default input, batch 1: multiply-accumulates, biases excluded "
         "(--explain: in full)")


@results.document.register(ZooTable)
def document(table: ZooTable) -> Document:
    rows = table.rows
    shown = Section(
        # The name is what a user types: never shortened. On a narrow page the year goes
        # first, then the dataset, then the input; family and dataset fold at spaces.
        (Column("name"), Column("family", fold=True), Column("year", right=True, drop=3),
         Column("dataset", fold=True, drop=2), Column("input", drop=1),
         Column("params", right=True), Column("MACs", right=True)),
        tuple(row(r.name, r.family, str(r.year), r.dataset, shape(r.input_size),
                  human(r.params) if r.params is not None else "-",
                  human(r.macs) if r.macs is not None else "-") for r in rows),
        formats=("table",))
    cited = Section(
        (Column("model"), Column("family"), Column("paper"), Column("year", right=True),
         Column("input"), Column("params", right=True), Column("MACs", right=True)),
        tuple(row(f"`{r.name}`", r.family, r.paper, str(r.year), shape(r.input_size),
                  thousands(r.params), human(r.macs)) for r in rows),
        formats=("md",))
    fields = ("name", "family", "year", "paper", "dataset", "input_size", "params", "macs",
              "reference_params", "reference_source")
    exact = Section(tuple(Column(f, csv=f, shown=False) for f in fields),
                    tuple(row(*(cell("", v) for v in _csv_values(r))) for r in rows))
    full = "MACs at the default input, batch 1. " + table.convention
    return Document(f"cnnscope zoo ({len(rows)} models)", (shown, cited, exact),
                    footer=(full,), full_footer=(), data=table.to_dict(), heading=0,
                    explained=(full,), brief=(BRIEF,))


def _csv_values(r: ZooRow) -> list:
    return [r.name, r.family, r.year, r.paper, r.dataset, shape(r.input_size), r.params,
            r.macs, r.reference_params or "", r.reference_source or ""]

