"""What ``cnnscope spec`` shows (a ``SpecTable``, or several) as a ``Document``.

The table's cells, notes and flags are already text; a renderer only lays them out. CSV,
JSON and Markdown are deterministic: the committed files under reports/spec are compared
byte for byte by a test. A table wider than the page is printed in parts (``--wide``: one).
"""

from __future__ import annotations

import cnnscope.results as results
from cnnscope.analysis.spec.common import SpecTable, SpecTables
from cnnscope.report.document import Column, Document, Section, cell, row

GENERATED = "Generated from meta-device traces by `cnnscope spec {key}`; regenerate with `{command}`."
REGENERATE_COMMAND = "cnnscope spec --all -o reports/spec"
NUMERIC_COLUMNS = ("depth", "pool proj", "params", "paper params", "ops", "paper ops", "t", "c",
                   "n", "s")


@results.document.register(SpecTable)
def document(table: SpecTable) -> Document:
    """One spec table as a ``Document``: a table in parts (each headed by the row labels;
    numbers never cut; flagged statuses in colour), then the source and the numbered notes;
    CSV its columns plus a ``note`` column explaining flagged rows; JSON its exact data;
    Markdown a section (source, table, numbered notes, how it was generated: the committed
    reports/spec files)."""
    columns = tuple(Column(c, csv=c, right=_numeric(c), nowrap=_numeric(c), fold=True) for c in table.columns) + (
        Column("note", csv="note", shown=False),)
    rows = tuple(row(*cells[:-1], _status_cell(cells[-1]), note)
                 for cells, note in zip(table.rows, table.row_notes))
    return Document(table.title, (Section(columns, rows, layout="parts"),),
                    (f"Source: {table.source}", *table.notes), full_footer=table.notes,
                    data=table.to_dict(), key=table.key,
                    md_before=(f"Source: {table.source}.",),
                    md_after=(GENERATED.format(key=table.key, command=REGENERATE_COMMAND),))


def _status_cell(text: str):
    """The check column: what differs in red, what is near in yellow."""
    if text.startswith(("differs", "paper only", "not in")):
        return cell(text, style="red")
    if text.startswith("near"):
        return cell(text, style="yellow")
    return text


def _numeric(column: str) -> bool:
    return column in NUMERIC_COLUMNS or column.startswith("#")


@results.document.register(SpecTables)
def tables_document(tables: SpecTables) -> Document:
    """Several spec tables, one part each: tables and Markdown sections one after another,
    CSVs a blank line apart each headed by a ``# key`` line; JSON ``{"tables": [...]}``."""
    return Document("spec tables", (), data=tables.to_dict(), heading=0,
                    parts=tuple(document(t) for t in tables.tables))
