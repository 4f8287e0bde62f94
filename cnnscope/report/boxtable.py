"""A box-drawn table that looks like ``rich.table.Table`` and renders in linear time.

Rich's Table measures and wraps every cell through its generic layout engine: about a
second for ResNet-152's 515 layers, more than tracing the model. Layer tables are
simple (one line per row, numbers right-aligned), so they are laid out here directly,
with Rich's default HEAVY_HEAD box, header, sections and title, and printed as one
styled ``Text``. tests/report/test_boxtable.py checks the output against Rich's own Table,
character for character.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

from rich.cells import cell_len
from rich.text import Span, Text

# A cell is its text, or (text, style) for a styled one.
Cell = Union[str, "tuple[str, str]"]


@dataclass(frozen=True)
class Column:
    header: str
    right: bool = False  # right-justified (numbers)
    fold: bool = False  # may be folded onto several lines when the table is too wide


SECTION = None  # in ``rows``: a horizontal rule between groups of rows


def box_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell] | None], *,
              title: str | None = None, max_width: int = 160,
              header_style: str = "bold") -> Text:
    """The table as styled text, at most ``max_width`` cells wide where folding allows."""
    cells = [None if row is None else [_split(c) for c in row] for row in rows]
    widths = [max([_width(col.header)] + [_width(r[i][0]) for r in cells if r is not None])
              for i, col in enumerate(columns)]
    _fit(widths, columns, max_width)
    total = sum(widths) + 3 * len(widths) + 1

    out = _Builder()
    if title:
        for line in _fold(title, total):
            out.add(_center(line, total) + "\n", "italic")
    out.add(_rule("┏", "┳", "┓", "━", widths) + "\n")
    _add_row(out, [(col.header, header_style) for col in columns], columns, widths, "┃")
    out.add(_rule("┡", "╇", "┩", "━", widths) + "\n")
    seen_row = pending_rule = False
    for row in cells:
        if row is None:
            pending_rule = seen_row  # drawn only between two rows, as Rich does
            continue
        if pending_rule:
            out.add(_rule("├", "┼", "┤", "─", widths) + "\n")
            pending_rule = False
        _add_row(out, row, columns, widths, "│")
        seen_row = True
    out.add(_rule("└", "┴", "┘", "─", widths))
    return out.text()


class _Builder:
    """Text in one piece: one ``Text`` built at the end instead of thousands of appends."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[Span] = []
        self.length = 0

    def add(self, text: str, style: str | None = None) -> None:
        if style and text.strip():
            self.spans.append(Span(self.length, self.length + len(text.rstrip("\n")), style))
        self.parts.append(text)
        self.length += len(text)

    def text(self) -> Text:
        return Text("".join(self.parts), spans=self.spans)


def _width(text: str) -> int:
    return len(text) if text.isascii() else cell_len(text)


def _split(cell: Cell) -> tuple[str, str | None]:
    return (cell, None) if isinstance(cell, str) else (cell[0], cell[1])


def _fit(widths: list[int], columns: Sequence[Column], max_width: int) -> None:
    """Narrow the foldable columns, widest first, until the table fits (or cannot shrink)."""
    excess = sum(widths) + 3 * len(widths) + 1 - max_width
    foldable = [i for i, c in enumerate(columns) if c.fold]
    while excess > 0 and foldable:
        i = max(foldable, key=lambda j: widths[j])
        if widths[i] <= 4:
            break
        widths[i] -= 1
        excess -= 1


def _fold(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` cells: break at spaces, cut words longer than a line."""
    if _width(text) <= width:
        return [text]
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if _width(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while _width(word) > width:
            lines.append(word[:width])
            word = word[width:]
        line = word
    if line:
        lines.append(line)
    return lines


def _center(text: str, width: int) -> str:
    pad = width - _width(text)
    left = pad // 2
    return " " * left + text + " " * (pad - left)


def _rule(left: str, mid: str, right: str, fill: str, widths: Sequence[int]) -> str:
    return left + mid.join(fill * (w + 2) for w in widths) + right


def _add_row(out: _Builder, row: Sequence[tuple[str, str | None]], columns: Sequence[Column],
             widths: Sequence[int], bar: str) -> None:
    folded = [_fold(text, w) if _width(text) > w else [text]
              for (text, _), w in zip(row, widths)]
    for line_no in range(max(len(f) for f in folded)):
        out.add(bar)
        for (_, style), lines, col, w in zip(row, folded, columns, widths):
            text = lines[line_no] if line_no < len(lines) else ""
            pad = " " * (w - _width(text))
            if style and text:
                out.add(" " + pad if col.right else " ")
                out.add(text, style)
                out.add((pad if not col.right else "") + " " + bar)
            else:
                out.add(" " + (pad + text if col.right else text + pad) + " " + bar)
        out.add("\n")
