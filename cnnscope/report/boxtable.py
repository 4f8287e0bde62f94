"""A box-drawn table that looks like ``rich.table.Table`` and renders in linear time.

Rich's Table measures and wraps every cell through its generic layout engine: about a
second for ResNet-152's 515 layers, more than tracing the model. Layer tables are
simple (one line per row, numbers right-aligned), so they are laid out here directly,
with Rich's default HEAVY_HEAD box, header, sections and title, and printed as one
styled ``Text``. tests/report/test_boxtable.py checks the output against Rich's own Table,
character for character.

It is the one layout engine of every table cnnscope prints (issue 23). A table wider
than the page is fitted, not chopped: columns with a ``drop`` priority are left out,
highest first, until the rest fits; then, stage by stage (``_stage_lows``), headers of
several words fold, prose folds at spaces, and only then are long names shortened in the
middle (``layer1.0.…sample.0``: the leaf stays). Numbers, names a user types and type
names are never cut. ``wide=True`` skips all of it. A table of row labels and item
columns (``print_parts``: models side by side) is cut into parts that each fit. Output
that is not a terminal (a pipe, a file) is plain aligned text: no box drawing, two spaces
between columns, one line per row, so ``grep``, ``awk`` and ``cut`` work on it. Every
text is made printable (``cnnscope.printable``) before it is laid out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

from rich.cells import cell_len
from rich.text import Span, Text

from cnnscope.printable import printable

# A cell is its text, or (text, style) for a styled one.
LayoutCell = Union[str, "tuple[str, str]"]


@dataclass(frozen=True)
class LayoutColumn:
    """A column as the layout engine fits it (a ``Document``'s ``Column`` becomes one)."""

    header: str
    right: bool = False  # right-justified (numbers)
    fold: bool = False  # may be folded onto several lines when the table is too wide
    drop: int = 0  # > 0: left out when the table is too wide, the highest number first
    shorten: int = 0  # > 0: long text is shortened in the middle, down to this many cells


SECTION = None  # in ``rows``: a horizontal rule between groups of rows


@dataclass(frozen=True)
class Fitted:
    """A laid-out table and what fitting it to the page cost."""

    text: Text
    dropped: tuple[str, ...] = ()  # headers of the columns left out
    shortened: bool = False  # some cell was shortened in the middle
    width: int = 0  # the page width it was fitted to

    def notes(self) -> list[str]:
        """Footer lines saying what was left out and how to see it."""
        lines = []
        if self.dropped:
            lines.append(f"left out to fit {self.width} columns: {', '.join(self.dropped)} "
                         "(--wide shows all)")
        if self.shortened:
            lines.append("… = name shortened in the middle (--wide: whole names)")
        return lines


def box_table(columns: Sequence[LayoutColumn], rows: Sequence[Sequence[LayoutCell] | None], *,
              title: str | None = None, max_width: int = 160,
              header_style: str = "bold") -> Text:
    """The table as styled text, at most ``max_width`` cells wide where folding allows."""
    return layout_table(columns, rows, title=title, max_width=max_width,
                        header_style=header_style, fit=False).text


def print_table(console, columns: Sequence[LayoutColumn],
                rows: Sequence[Sequence[LayoutCell] | None], *,
                title: str | None = None, wide: bool = False) -> list[str]:
    """Print the table fitted to ``console``: boxed on a terminal, plain text elsewhere.

    Returns the footer lines that say what fitting left out (none with ``wide``).
    """
    fitted = layout_table(columns, rows, title=title, max_width=console.width,
                          plain=not console.is_terminal, wide=wide)
    console.print(fitted.text, highlight=False, soft_wrap=True)
    return fitted.notes()


def layout_table(columns: Sequence[LayoutColumn], rows: Sequence[Sequence[LayoutCell] | None], *,
                 title: str | None = None, max_width: int = 160, header_style: str = "bold",
                 plain: bool = False, fit: bool = True, wide: bool = False) -> Fitted:
    """Lay the table out, boxed or ``plain``; with ``fit``, drop and shorten to the page.

    Without ``fit`` only ``fold`` columns narrow (the Rich look); with ``wide`` nothing does.
    """
    # Free text (layer names from a model, a lock's fields) printed as visible escapes.
    columns = [LayoutColumn(printable(c.header), c.right, c.fold, c.drop, c.shorten)
               for c in columns]
    title = printable(title) if title else title
    cells = [None if row is None else [(printable(t), s) for t, s in map(_split, row)]
             for row in rows]
    widths = [max([_width(col.header)] + [_width(r[i][0]) for r in cells if r is not None])
              for i, col in enumerate(columns)]
    sep = 2 if plain else 3
    dropped: list[int] = []
    if wide:
        pass
    elif fit:
        dropped = _fit_to_page(widths, columns, max_width, sep, cells)
    else:
        _fit(widths, columns, max_width, sep)
    all_columns = columns
    keep = [i for i in range(len(columns)) if i not in dropped]
    columns = [columns[i] for i in keep]
    widths = [widths[i] for i in keep]
    shortened = False
    kept_cells: list = []
    for row in cells:
        if row is None:
            kept_cells.append(None)
            continue
        new = []
        for col, w, i in zip(columns, widths, keep):
            text, style = row[i]
            if col.shorten and _width(text) > w:
                text, shortened = shorten_middle(text, w), True
            new.append((text, style))
        kept_cells.append(new)
    build = _plain if plain else _boxed
    text = build(columns, widths, kept_cells, title, header_style)
    return Fitted(text, tuple(all_columns[i].header for i in dropped), shortened, max_width)


def _boxed(columns, widths, cells, title, header_style) -> Text:
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


def _plain(columns, widths, cells, title, header_style) -> Text:
    """Aligned columns two spaces apart, a dashed rule under the header; a section break
    is a blank line (a table for grep and awk, as ``ps`` or ``kubectl get`` print)."""
    lines = [title] if title else []
    headers = [_fold(c.header, w) for c, w in zip(columns, widths)]
    for n in range(max(len(h) for h in headers)):  # a long header folds at its spaces
        lines.append(_plain_row([h[n] if n < len(h) else "" for h in headers], columns, widths))
    lines.append("  ".join("-" * w for w in widths))
    seen_row = pending = False
    for row in cells:
        if row is None:
            pending = seen_row
            continue
        if pending:
            lines.append("")
            pending = False
        folded = [_fold(text, w) if _width(text) > w else [text] for (text, _), w in zip(row, widths)]
        for n in range(max(len(f) for f in folded)):
            lines.append(_plain_row([f[n] if n < len(f) else "" for f in folded], columns, widths))
        seen_row = True
    return Text("\n".join(lines))


def _plain_row(texts, columns, widths) -> str:
    out = []
    for text, col, w in zip(texts, columns, widths):
        pad = " " * (w - _width(text))
        out.append(pad + text if col.right else text + pad)
    return "  ".join(out).rstrip()


def shorten_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells: its start, ``…``, its end (the leaf kept).

    ``layer1.0.downsample.0`` at 18 -> ``layer1.0.…sample.0``: the end keeps at least the
    last dotted part, and half the width when that is shorter.
    """
    if _width(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    room = width - 1
    leaf = text.rsplit(".", 1)[-1]
    tail = min(room - 1 if room > 1 else room, max(len(leaf) + 1, (room + 1) // 2))
    head = room - tail
    return text[:head] + "…" + text[len(text) - tail:]


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


def _split(cell: LayoutCell) -> tuple[str, str | None]:
    return (cell, None) if isinstance(cell, str) else (cell[0], cell[1])


def _total(widths: Sequence[int], sep: int) -> int:
    """Cells a line takes: boxed (``sep`` 3) adds a bar and padding per column; plain
    (``sep`` 2) two spaces between columns."""
    return sum(widths) + (sep * len(widths) + 1 if sep == 3 else 2 * max(len(widths) - 1, 0))


def _longest_word(texts: Sequence[str]) -> int:
    return max((_width(w) for t in texts for w in t.split(" ")), default=0)


STAGES = 5
DROP_STAGE = 1  # columns are dropped until the rest fits at this stage's widths


def _stage_lows(col: LayoutColumn, natural: int, header: str, texts: Sequence[str]) -> list[int]:
    """How narrow a column may get at each stage of fitting, widest stage first:

    0. a header of several words folds onto lines (its cells keep their width);
    1. prose (``fold``) folds at spaces down to 20 cells, no word cut;
    2. names (``shorten``) shorten in the middle, the leaf kept;
    3. prose folds narrower, down to its longest word;
    4. prose cuts words longer than a line (at least 4 cells, at most 20 kept).

    Columns with a ``drop`` priority are left out before stage 2: a layer name is
    shortened only when no column can go, and a table loses a column before its prose
    turns into a narrow strip. Every other cell keeps its width: numbers, and names a
    user types, are never cut.
    """
    cells = max((_width(t) for t in texts), default=0)
    head = _longest_word([header])
    if col.fold:
        words = max(head, _longest_word(texts))
        cut = max(head, min(natural, max(4, min(20, natural))))
        comfortable = max(words, min(natural, 20))
        stages = [natural, comfortable, comfortable, words, min(words, cut)]
    elif col.shorten:
        low = max(head, min(natural, col.shorten))
        stages = [natural, natural, low, low, low]
    else:
        stages = [max(head, cells)] * STAGES
    for k in range(1, STAGES):  # each stage narrows what the one before left
        stages[k] = min(stages[k], stages[k - 1])
    return stages


def _fit_to_page(widths: list[int], columns: Sequence[LayoutColumn], max_width: int, sep: int,
                 cells: Sequence | None = None) -> list[int]:
    """Drop columns by priority until the rest fits at ``DROP_STAGE``; then narrow stage
    by stage (``_stage_lows``), the rightmost column first within a stage. Returns the
    dropped indices."""
    texts = [[r[i][0] for r in (cells or ()) if r is not None] for i in range(len(columns))]
    lows = [_stage_lows(c, w, c.header, t) for c, w, t in zip(columns, widths, texts)]
    dropped: list[int] = []
    while True:
        kept = [i for i in range(len(columns)) if i not in dropped]
        if _total([lows[i][DROP_STAGE] for i in kept], sep) <= max_width:
            break
        candidates = [i for i in kept if columns[i].drop > 0]
        if not candidates:
            break
        dropped.append(max(candidates, key=lambda j: (columns[j].drop, j)))
    kept = [i for i in range(len(columns)) if i not in dropped]
    excess = _total([widths[i] for i in kept], sep) - max_width
    # Within a stage the rightmost column gives way first: names (the first column) keep
    # the most room, a type or prose column on their right narrows before them.
    for stage in range(STAGES):
        for i in reversed(kept):
            if excess <= 0:
                break
            cut = min(excess, widths[i] - lows[i][stage])
            if cut > 0:
                widths[i] -= cut
                excess -= cut
    return sorted(dropped)


def _fit(widths: list[int], columns: Sequence[LayoutColumn], max_width: int, sep: int = 3) -> None:
    """Narrow the foldable columns, widest first, until the table fits (or cannot shrink)."""
    excess = _total(widths, sep) - max_width
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


def _add_row(out: _Builder, row: Sequence[tuple[str, str | None]], columns: Sequence[LayoutColumn],
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


def print_parts(console, columns: Sequence[LayoutColumn],
                rows: Sequence[Sequence[LayoutCell] | None], *, title: str | None = None,
                wide: bool = False, keep: int = 1) -> list[str]:
    """A table of row labels (the first ``keep`` columns) and item columns (models side
    by side, a paper's table), cut into parts that each fit ``console.width``, every part
    headed by the labels; each part is fitted as ``print_table`` fits a table (boxed on a
    terminal, plain elsewhere). ``wide``: one table at its natural width. Returns the
    footer lines that say what was cut."""
    if wide:
        return print_table(console, columns, rows, title=title, wide=True)
    cells = [None if r is None else [_split(c) for c in r] for r in rows]
    widths = [max([_width(col.header)] + [_width(r[i][0]) for r in cells if r is not None])
              for i, col in enumerate(columns)]
    sep = 3 if console.is_terminal else 2
    head = list(range(min(keep, len(columns))))
    parts: list[list[int]] = []
    current: list[int] = []
    for i in range(len(head), len(columns)):
        if current and _total([widths[j] for j in head + current + [i]], sep) > console.width:
            parts.append(head + current)
            current = []
        current.append(i)
    parts.append(head + current)
    notes: list[str] = []
    for k, indices in enumerate(parts):
        part = f", part {k + 1} of {len(parts)}" if len(parts) > 1 and title else ""
        sub = [None if r is None else [r[i] for i in indices] for r in rows]
        for line in print_table(console, [columns[i] for i in indices], sub,
                                title=(title or "") + part or None):
            if line not in notes:
                notes.append(line)
    return split_note(len(parts), console.width) + notes


def split_note(parts: int, width: int) -> list[str]:
    """The footer line of a table printed in ``parts`` parts (none for one part)."""
    if parts <= 1:
        return []
    return [f"cut into {parts} parts to fit {width} columns (--wide: one table)"]


def print_footer(console, lines: Sequence[str]) -> None:
    """The lines under a table. A terminal wraps them itself (a copied line stays whole);
    piped or written to a file, they are wrapped at spaces to the page width."""
    import textwrap

    for line in lines:
        line = printable(line)
        # piped: wrapped here at spaces, so no line ends in the space it broke at
        pieces = [line] if console.is_terminal else textwrap.wrap(
            line, console.width, break_long_words=False, break_on_hyphens=False) or [""]
        for piece in pieces:
            console.print(piece, highlight=False, markup=False, soft_wrap=True)
