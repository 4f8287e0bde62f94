"""What ``cnnscope spec`` shows (a ``SpecTable``, or several) as a ``Document``.

The table's cells, notes and flags are already text; a renderer only lays them out. CSV,
JSON and Markdown go through the Document renderers (deterministic: the committed files
under reports/spec are compared byte for byte by a test); the table, in parts with the
statuses coloured, is still printed by this module's ``render_rich`` (``Document.own``).
"""

from __future__ import annotations

from cnnscope.analysis.spec.common import SpecTable, SpecTables
from cnnscope.report.document import Column, Document, Section, row, to_csv, to_markdown

GENERATED = "Generated from meta-device traces by `cnnscope spec {key}`; regenerate with `{command}`."
REGENERATE_COMMAND = "cnnscope spec --all -o reports/spec"
MAX_WIDTH = 240
NUMERIC_COLUMNS = ("depth", "pool proj", "params", "paper params", "ops", "paper ops", "t", "c",
                   "n", "s")


def render_rich(table, console, wide: bool = False) -> None:
    """Print one spec table, its notes and its source on a Rich console.

    A cell is never cut. A table wider than the page (GoogLeNet has 15 columns) is
    printed in parts, each headed by the row-label column (``wide``: one table at its
    natural width, up to ``MAX_WIDTH``, which the terminal wraps).
    """
    from rich import box
    from rich.measure import Measurement
    from rich.table import Table

    from cnnscope.report.boxtable import split_columns, split_note

    def make(indices: list[int], title: str | None = table.title) -> Table:
        style = box.HEAVY_HEAD if console.is_terminal else box.SIMPLE_HEAD
        out = Table(title=title, header_style="bold", box=style, padding=(0, 1))
        for i in indices:
            col = table.columns[i]
            numeric = col in NUMERIC_COLUMNS or col.startswith("#")
            out.add_column(col, justify="right" if numeric else "left", no_wrap=numeric,
                           overflow="fold", style="bold" if i == 0 else None)
        for row in table.rows:
            cells = list(row)
            if cells and cells[-1].startswith(("differs", "paper only", "not in")):
                cells[-1] = f"[red]{cells[-1]}[/]"
            elif cells and cells[-1].startswith("near"):
                cells[-1] = f"[yellow]{cells[-1]}[/]"
            out.add_row(*(cells[i] for i in indices))
        return out

    n = len(table.columns)
    if wide:
        out = make(list(range(n)))
        natural = Measurement.get(console, console.options.update(max_width=MAX_WIDTH), out).maximum
        saved = getattr(console, "_width", None)  # None: the console follows the terminal
        console.width = max(console.width, min(natural, MAX_WIDTH))
        try:
            console.print(out, crop=False)
        finally:
            console._width = saved
        parts = 1
    else:
        groups = split_columns(console, make, n)
        parts = len(groups)
        for k, indices in enumerate(groups):
            suffix = f", part {k + 1} of {parts}" if parts > 1 else ""
            console.print(make(indices, table.title + suffix), crop=False)
    for line in split_note(parts, console.width):
        console.print(line, highlight=False, markup=False)
    console.print(f"Source: {table.source}", highlight=False, markup=False)
    for note in table.notes:
        console.print(note, highlight=False, markup=False)


def document(table: SpecTable) -> Document:
    """One spec table as a ``Document``: CSV its columns plus a ``note`` column explaining
    flagged rows; JSON its exact data; Markdown a section (source, table, numbered notes,
    how it was generated: the committed reports/spec files). The table (in parts,
    statuses coloured) is still this module's own."""
    columns = tuple(Column(c, csv=c, right=_numeric(c)) for c in table.columns) + (
        Column("note", csv="note", shown=False),)
    rows = tuple(row(*cells, note) for cells, note in zip(table.rows, table.row_notes))
    return Document(table.title, (Section(columns, rows),), table.notes, data=table.to_dict(),
                    md_before=(f"Source: {table.source}.",),
                    md_after=(GENERATED.format(key=table.key, command=REGENERATE_COMMAND),),
                    own={"table": lambda console, wide: render_rich(table, console, wide=wide)})


def _numeric(column: str) -> bool:
    return column in NUMERIC_COLUMNS or column.startswith("#")


def tables_document(tables: SpecTables) -> Document:
    """Several spec tables: each one's table or Markdown section in turn; the CSVs
    separated by a blank line and a ``# key`` line; JSON ``{"tables": [...]}``."""
    docs = [document(t) for t in tables.tables]

    def print_tables(console, wide: bool) -> None:
        for t in tables.tables:
            render_rich(t, console, wide=wide)

    return Document("spec tables", tuple(s for d in docs for s in d.sections),
                    data=tables.to_dict(),
                    own={"table": print_tables,
                         "csv": lambda: "\n".join(f"# {t.key}\n{to_csv(d)}"
                                                   for t, d in zip(tables.tables, docs)),
                         "md": lambda: "\n".join(to_markdown(d) for d in docs)})
