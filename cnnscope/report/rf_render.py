"""What ``cnnscope rf`` shows, as a ``Document``.

It takes a ``ReceptiveFieldReport`` (``cnnscope.analysis.receptive_field``) and holds no
arithmetic: per-axis values print once when every axis agrees (``196``), else per axis
(``19x25``, H then W).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Iterable

import cnnscope.results as results
from cnnscope.analysis.receptive_field import ReceptiveFieldReport
from cnnscope.report.document import SECTION_RULE, Column, Document, Section, cell, row
from cnnscope.units import shape

MAX_WARNINGS_SHOWN = 20  # in the table footer; files carry every warning
BRIEF = ("RF: field width in input pixels (padding counted); stride: input pixels between "
         "neighbouring fields; global: sees the whole input (--explain: in full)")


def number(v: Any) -> str:
    """Exact text of an int or Fraction: 16, 0.5, 15.5, 1/3 (no rounding, ever)."""
    if v is None:
        return "-"
    if isinstance(v, Fraction):
        if v.denominator == 1:
            return str(v.numerator)
        d = v.denominator
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        if d == 1:  # a terminating decimal prints exactly
            return f"{float(v):.10f}".rstrip("0")
        return f"{v.numerator}/{v.denominator}"
    return str(v)


def per_axis(values: Iterable[Any]) -> str:
    """One value when all axes agree, else ``HxW``; ``-`` when there is none."""
    vals = [number(v) for v in values]
    if not vals or all(v == "-" for v in vals):
        return "-"
    return vals[0] if len(set(vals)) == 1 else "x".join(vals)


def notes(f, axis_names: tuple[str, ...] = ("H", "W")) -> str:
    """Short flags for a row: global, +ctx, misaligned, varying field sizes."""
    out = []
    if f.status == "global":
        out.append("global")
    elif f.status == "partial":
        out.append("global on " + "/".join(
            n for n, v in zip(axis_names, f.receptive_field) if v is None))
    elif f.status == "unknown":
        out.append("unknown")
    if f.global_context and f.status != "global":
        out.append("+ctx")
    lo, hi = f.receptive_field_min, f.receptive_field
    if any(a is not None and b is not None and a != b for a, b in zip(lo, hi)):
        out.append(f"sizes {per_axis(lo)}..{per_axis(hi)}")
    if any("not aligned" in w for w in f.warnings):
        out.append("MISALIGNED")
    elif f.warnings:
        out.append("see warnings")
    return ", ".join(out)


def title(result) -> str:
    return f"{result.model}  input {shape(result.input_size)}  receptive fields (input pixels)"


def final_line(result) -> str:
    f = result.final
    if f is None:
        return "final: no spatial feature map on the way to the output"
    ctx = " (+ global context: gated or normalised with whole-input statistics)" \
        if f.global_context else ""
    return (f"final spatial map {f.name} ({shape(f.output_shape[1:])}): receptive field "
            f"{per_axis(f.receptive_field)}, stride {per_axis(f.effective_stride)}, "
            f"padding {per_axis(f.effective_padding)}, centre {per_axis(f.centre)}{ctx}")


def axes_line(result) -> str | None:
    """For inputs that are not CxHxW: which dims the per-axis figures describe."""
    names = tuple(result.axis_names)
    if len(names) == 2:
        return None
    if not names:
        return "axes: none (input C): no spatial axis, every layer sees the whole input"
    return (f"axes: {' x '.join(names)} (input {shape(result.input_size)}: the first dim is "
            f"channels; each other dim is a spatial axis with its own field, "
            f"{'D is depth or time' if len(names) == 3 else 'in this order'})")


def footer_lines(result, limit: int | None = MAX_WARNINGS_SHOWN) -> list[str]:
    lines = [final_line(result)]
    axes = axes_line(result)
    if axes:
        lines.append(axes)
    warnings = list(result.warnings)
    if warnings:
        lines.append(f"{len(warnings)} warning(s):")
        shown = warnings if limit is None else warnings[:limit]
        lines.extend(f"  {w}" for w in shown)
        if len(shown) < len(warnings):
            lines.append(f"  ... {len(warnings) - len(shown)} more (see --format json)")
    lines.append("Convention: " + result.convention)
    return lines


def _cells(f) -> list[str]:
    return [per_axis(f.receptive_field), per_axis(f.effective_stride),
            per_axis(f.effective_padding), per_axis(f.centre)]


@results.document.register(ReceptiveFieldReport)
def document(result: ReceptiveFieldReport) -> Document:
    """Per layer (a rule between top-level modules): field, stride, padding, centre, notes.

    On a narrow page padding, centre, output and type are left out in that order; the
    field and stride always stay. The table's footer shows the first warnings, the
    Markdown file all of them. CSV: per-axis values as ``H`` or ``HxW``.
    """
    columns = (Column("layer", csv="name", shorten=20), Column("type", csv="type", drop=1),
               Column("output", csv="output_shape", right=True, drop=2),
               Column("status", csv="status", shown=False),
               Column("RF", csv="receptive_field", right=True),
               Column("stride", csv="effective_stride", right=True),
               Column("padding", csv="effective_padding", right=True, drop=4),
               Column("centre", csv="centre", right=True, drop=3),
               Column("RF min", csv="receptive_field_min", shown=False),
               Column("global context", csv="global_context", shown=False),
               Column("warnings", csv="warnings", shown=False),
               Column("notes", fold=True))
    rows: list = []
    previous_top = None
    for f in result.visible_layers():
        top = f.name.split(".")[0]
        if previous_top is not None and top != previous_top:
            rows.append(SECTION_RULE)
        previous_top = top
        rows.append(row(f.name, f.type, cell(shape(f.output_shape[1:]), shape(f.output_shape)),
                        cell("", f.status), *_cells(f), cell("", per_axis(f.receptive_field_min)),
                        cell("", int(f.global_context)), cell("", " | ".join(f.warnings)),
                        notes(f, result.axis_names)))
    return Document(title(result), (Section(columns, tuple(rows)),), tuple(footer_lines(result)),
                    full_footer=tuple(footer_lines(result, limit=None)), data=result.to_dict(),
                    explained=("Convention: " + result.convention,), brief=(BRIEF,))
