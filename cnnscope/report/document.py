"""What a result shows, whatever the format: a ``Document``; and one renderer per format.

A document is a title, sections (columns and rows) and footer lines, plus the exact data
for JSON. Each result type has one function that decides its columns and rows, picked by
type (``cnnscope.report.render``); the four functions here print any document:

- ``render_table``: a box-drawn table on a terminal, plain aligned text elsewhere
  (``boxtable``, the one layout engine of every table), fitted to the page by each
  column's ``drop``/``shorten``/``fold``;
- ``to_csv``: the columns that have a ``csv`` header, with each cell's exact value;
- ``to_json``: ``Document.data`` (the result's ``to_dict()``), strict JSON;
- ``to_markdown``: a GitHub table of the shown columns, then the footer as a list.

A cell is display text, optionally with an exact value (for CSV) and a style (``bold``
is also bold in Markdown). Rows marked ``total`` sit under a rule and stay out of CSV.
A column of names may be ``code`` (in backticks in Markdown).

Several results in one output are one document of ``parts``, each a document printed in
turn after the document's own sections and footer: a table after a table, Markdown
sections a blank line apart, CSV files a blank line apart each headed by a ``# key`` line
(the part's ``key``). ``heading`` is the level of the Markdown title (a part may be a
level below its document's).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any, Sequence

from cnnscope.fileio import strict_json
from cnnscope.printable import csv_text, printable

_UNSET: Any = object()


@dataclass(frozen=True)
class Column:
    """One column: where it appears and how it fits a narrow page."""

    header: str  # in the table and in Markdown
    csv: str | None = None  # its CSV header; None: not in the CSV
    shown: bool = True  # in the table and in Markdown (False: a CSV-only column)
    right: bool = False  # right-aligned (numbers)
    drop: int = 0  # > 0: left out of a narrow table, the highest number first
    shorten: int = 0  # > 0: long text shortened in the middle down to this many cells
    fold: bool = False  # prose that may fold onto several lines
    # Kept so that older callers still build: the one layout engine never wraps a cell
    # that is not ``fold`` and never narrows one below what it needs.
    nowrap: bool = False
    min_width: int = 0
    code: bool = False  # names: in backticks in Markdown


@dataclass(frozen=True)
class Cell:
    """What a cell shows, and the exact value behind it (CSV) when that differs."""

    text: str
    exact: Any = _UNSET
    style: str | None = None

    @property
    def value(self) -> Any:
        return self.text if self.exact is _UNSET else self.exact


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]
    total: bool = False  # a totals row: under a rule, not in the CSV
    markdown: bool = True  # False: a line of the table only (a "... more" or subtotal line)


SECTION_RULE = None  # in ``Section.rows``: a horizontal rule between groups of rows


@dataclass(frozen=True)
class Section:
    columns: tuple[Column, ...]
    rows: tuple[Row | None, ...]
    title: str | None = None
    csv_order: tuple[str, ...] | None = None  # CSV headers in file order (default: columns')
    # Every table has one layout engine (``boxtable``): boxed on a terminal, plain text
    # when piped, fitted to the page (columns dropped by priority, headers and prose
    # folded, names shortened last; numbers and names a user types never cut). "parts":
    # a label column, then one column per item (models side by side), cut into parts
    # that fit the page, each headed by the labels (``--wide``: one table).
    layout: str = "fit"
    formats: tuple[str, ...] = ("table", "md")  # where its shown columns appear


@dataclass(frozen=True)
class Document:
    """A result as it is shown: title, sections, footer lines, and its exact data."""

    title: str
    sections: tuple[Section, ...]
    footer: tuple[str, ...] = ()
    # The footer of Markdown when it differs from the table's: a long warning list cut
    # short in the table, a source line that Markdown puts first (``md_before``).
    full_footer: tuple[str, ...] | None = None
    # Footer lines a table shows only with --explain (the full counting conventions,
    # hundreds of characters); in their place a table shows ``brief``, at most two lines
    # at 80 columns, about the columns on screen. Markdown always has the full text.
    explained: tuple[str, ...] = ()
    brief: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)  # for JSON: the result's to_dict()
    heading: int = 2  # Markdown starts with a title of this level ("## title"; 0: none)
    # Keys of ``data`` whose long lists are written one compact item per line (thousands
    # of layers indented item by item make a slow file no easier to read or diff).
    compact: tuple[str, ...] = ()
    # Markdown paragraphs before the first table and after the footer list (a source line;
    # how the file was generated), each line as it is.
    md_before: tuple[str, ...] = ()
    md_after: tuple[str, ...] = ()
    # Documents printed after this one's sections and footer, each in turn (several
    # results in one output: spec --all; bench's per-layer tables); JSON is ``data`` alone.
    parts: tuple["Document", ...] = ()
    key: str | None = None  # a part's name: the "# key" line heading its CSV


def cell(text: str, exact: Any = _UNSET, style: str | None = None) -> Cell:
    return Cell(text, exact, style)


def row(*cells: Cell | str, total: bool = False, markdown: bool = True) -> Row:
    return Row(tuple(c if isinstance(c, Cell) else Cell(c) for c in cells), total, markdown)


# ---------------------------------------------------------------------- the four renderers


def render_table(doc: Document, console, *, wide: bool = False, explain: bool = False) -> None:
    """Each section fitted to the console by the one layout engine (``boxtable``), then
    what fitting left out and the footer (the brief conventions, or with ``explain`` the
    full text)."""
    from cnnscope.report.boxtable import (
        SECTION,
        LayoutColumn,
        print_footer,
        print_parts,
        print_table,
    )

    notes: list[str] = []
    for section in doc.sections:
        if "table" not in section.formats or not any(c.shown for c in section.columns):
            continue
        shown = [i for i, c in enumerate(section.columns) if c.shown]
        columns = [section.columns[i] for i in shown]
        rows: list = []
        for r in section.rows:
            if r is None:
                rows.append(SECTION)
                continue
            if r.total and (not rows or rows[-1] is not SECTION):
                rows.append(SECTION)
            rows.append([c.text if c.style is None else (c.text, c.style)
                         for c in (r.cells[i] for i in shown)])
        title = section.title or doc.title
        boxed = [LayoutColumn(c.header, right=c.right, fold=c.fold, drop=c.drop, shorten=c.shorten)
                 for c in columns]
        printer = print_parts if section.layout == "parts" else print_table
        for line in printer(console, boxed, rows, title=title, wide=wide):
            if line not in notes:
                notes.append(line)
    print_footer(console, notes + table_footer(doc, explain))
    for part in doc.parts:
        render_table(part, console, wide=wide, explain=explain)


def table_footer(doc: Document, explain: bool = False) -> list[str]:
    """The footer of a table: ``doc.footer`` with its ``explained`` lines replaced by
    ``brief`` (where the first of them stood), unless ``explain``."""
    if explain or not doc.explained:
        return list(doc.footer)
    out: list[str] = []
    for line in doc.footer:
        if line not in doc.explained:
            out.append(line)
        elif not any(b in out for b in doc.brief):
            out.extend(doc.brief)
    return out


def to_csv(doc: Document) -> str:
    """The CSV columns of every section (one header each), exact values, no totals rows;
    then each part's CSV, a blank line before it and its ``# key`` line."""
    pieces = [_sections_csv(doc)] if any(c.csv for s in doc.sections for c in s.columns) else []
    for part in doc.parts:
        text = to_csv(part)
        if text:
            pieces.append(text if part.key is None else f"# {printable(part.key)}\n{text}")
    return "\n".join(pieces)


def _sections_csv(doc: Document) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for section in doc.sections:
        keep = [i for i, c in enumerate(section.columns) if c.csv is not None]
        if section.csv_order is not None:
            index = {section.columns[i].csv: i for i in keep}
            keep = [index[name] for name in section.csv_order]
        if not keep:
            continue
        w.writerow([section.columns[i].csv for i in keep])
        for r in section.rows:
            if r is not None and not r.total:  # text a spreadsheet would run is guarded
                w.writerow([csv_text(r.cells[i].value) for i in keep])
    return buf.getvalue()


def to_json(doc: Document) -> str:
    """``doc.data`` indented; the lists named in ``compact`` one item per line."""
    if not doc.compact:
        return strict_json(doc.data, indent=2) + "\n"
    data = dict(doc.data)
    for key in doc.compact:
        data[key] = _placeholder(key)
    text = strict_json(data, indent=2)
    for key in doc.compact:
        items = doc.data[key]
        listed = ("[\n" + ",\n".join("    " + strict_json(item) for item in items) + "\n  ]"
                  if items else "[]")
        text = text.replace(strict_json(_placeholder(key)), listed)
    return text + "\n"


def _placeholder(key: str) -> str:
    return f"@@{key}@@"


def to_markdown(doc: Document) -> str:
    """``## title``, a table per section (a blank line between), then the footer as a list;
    a ``|`` in a cell is escaped (``\\|``), or it would end the cell."""
    out = [f"{'#' * doc.heading} {printable(doc.title)}", ""] if doc.heading else []
    if doc.md_before:
        out += [*map(printable, doc.md_before), ""]
    for section in doc.sections:
        columns = [c for c in section.columns if c.shown]
        if "md" not in section.formats or not columns:
            continue
        out.append("|" + "".join(f" {_md(c.header)} |" if c.header else " |" for c in columns))
        out.append("| " + " | ".join("---:" if c.right else "---" for c in columns) + " |")
        for r in section.rows:
            if r is not None and r.markdown:
                out.append(_markdown_row(r, section.columns))
        out.append("")
    footer = doc.footer if doc.full_footer is None else doc.full_footer
    out.extend(f"- {printable(line.strip())}" for line in footer)
    if doc.md_after:
        out += ([""] if footer else []) + [printable(line) for line in doc.md_after]
    if not footer and out and out[-1] == "":
        out.pop()  # a table alone ends with its last row
    pieces = ["\n".join(out) + "\n"] if out else []
    return "\n".join(pieces + [to_markdown(part) for part in doc.parts])


def _md(text: str) -> str:
    """A cell's text: printable (a newline in a layer name is ``\\n``, not a broken row),
    and a ``|`` escaped."""
    return printable(text).replace("|", "\\|")


def _markdown_row(r: Row, columns: Sequence[Column]) -> str:
    cells = [Cell(f"`{c.text}`", style=c.style) if col.code and c.text else c
             for c, col in zip(r.cells, columns) if col.shown]
    if not r.total:
        return "| " + " | ".join(_md(c.text) for c in cells) + " |"
    # a totals row: bold figures, blank cells as "| |"
    return "|" + "".join(f" **{_md(c.text)}** |" if c.text and c.style == "bold" else
                         (f" {_md(c.text)} |" if c.text else " |") for c in cells)


def to_html(doc: Document) -> str:
    """What ``to_markdown`` shows, as HTML (a notebook's ``_repr_html_``): the title, a
    table per section, the footer as a list; every text printable and HTML-escaped."""
    from html import escape

    def text(t: str) -> str:
        return escape(printable(t))

    out = [f"<h{min(doc.heading, 6)}>{text(doc.title)}</h{min(doc.heading, 6)}>"] \
        if doc.heading else []
    out += [f"<p>{text(line)}</p>" for line in doc.md_before]
    for section in doc.sections:
        columns = [c for c in section.columns if c.shown]
        if "md" not in section.formats or not columns:
            continue
        align = ['style="text-align:right"' if c.right else 'style="text-align:left"'
                 for c in columns]
        out.append("<table>")
        out.append("<thead><tr>" + "".join(f"<th {a}>{text(c.header)}</th>"
                                           for c, a in zip(columns, align)) + "</tr></thead>")
        out.append("<tbody>")
        for r in section.rows:
            if r is None or not r.markdown:
                continue
            cells = [c for c, col in zip(r.cells, section.columns) if col.shown]
            out.append("<tr>" + "".join(
                f"<td {a}>" + (f"<strong>{text(c.text)}</strong>" if r.total and c.style == "bold"
                               and c.text else text(c.text)) + "</td>"
                for c, a in zip(cells, align)) + "</tr>")
        out.append("</tbody></table>")
    footer = doc.footer if doc.full_footer is None else doc.full_footer
    if footer:
        out.append("<ul>" + "".join(f"<li>{text(line.strip())}</li>" for line in footer) + "</ul>")
    out += [f"<p>{text(line)}</p>" for line in doc.md_after]
    return "\n".join(out + [to_html(part) for part in doc.parts]) + "\n"


def render_text(doc: Document, format: str) -> str:
    """The CSV, JSON, Markdown or HTML text of ``doc`` (``format``: csv, json, md or html,
    the last a notebook's)."""
    return {"csv": to_csv, "json": to_json, "md": to_markdown, "html": to_html}[format](doc)
