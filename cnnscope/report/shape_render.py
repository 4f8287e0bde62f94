"""What ``cnnscope shape`` shows (``analysis.shapes.ShapeReport``) as a ``Document``."""

from __future__ import annotations

import cnnscope.results as results
from cnnscope.analysis.shapes import ShapeReport, ShapeRow
from cnnscope.report.document import Cell, Column, Document, Section, cell, row
from cnnscope.units import shape

FORMULA_NOTE = ("conv/pool: out = floor((n + 2p - d(k-1) - 1)/s + 1) (ceil with ceil_mode, "
                "dropping a last window that would start in the padding); transposed conv: "
                "out = (n - 1)s - 2p + d(k-1) + output_padding + 1")


BRIEF = ("conv/pool: out = floor((n + 2p - d(k-1) - 1)/s + 1); transposed conv: out = "
         "(n - 1)s - 2p + d(k-1) + output_padding + 1 (--explain: in full)")


def title(result) -> str:
    return f"{result.model}  input {result.batch}x{shape(result.input_size)}  output sizes"


def footer_lines(result) -> list[str]:
    lines = [f"output {', '.join(shape(s) for s in result.output_shapes)}"]
    if result.min_input is not None:
        lines.append(f"smallest input: {shape(result.min_input)}")
        if result.min_reason:
            lines.append(f"  one pixel less fails: {result.min_reason}")
    if result.near is not None:
        sizes = ", ".join(str(s) for s in (result.valid_near or ())) or "none found"
        lines.append(f"valid sizes near {result.near}: {sizes} (rule: {result.valid_rule})")
    lines.extend(result.notes)
    if len(result.input_size) != 3:
        lines.append(f"input {shape(result.input_size)}: the first dim is channels; the "
                     "formulas apply to each other dim (L; or D/T x H x W) on its own")
    lines.append("Formulas: " + FORMULA_NOTE)
    return lines


@results.document.register(ShapeReport)
def document(result: ShapeReport) -> Document:
    """Per layer: input and output sizes and the formula between them. On a narrow page
    the input column goes first, then the type; formulas fold at spaces. CSV has the
    whole shapes (batch included) and whether the formula gives the traced size."""
    columns = (Column("layer", csv="name", shorten=20),
               Column("type", csv="type", drop=1),
               Column("input", csv="input_shape", right=True, drop=2),
               Column("output", csv="output_shape", right=True),
               Column("formula", csv="formula", fold=True),
               Column("consistent", csv="consistent", shown=False))
    rows = tuple(row(r.name, r.type, cell(shape(r.input_shape[1:]), shape(r.input_shape)),
                     cell(shape(r.output_shape[1:]), shape(r.output_shape)),
                     _formula(r), cell("", int(r.consistent)))
                 for r in result.rows)
    data = result.to_dict()
    data["formulas"] = FORMULA_NOTE
    return Document(title(result), (Section(columns, rows),), tuple(footer_lines(result)),
                    data=data, explained=("Formulas: " + FORMULA_NOTE,), brief=(BRIEF,))


def _formula(r: ShapeRow) -> Cell:
    if r.consistent:
        return cell(r.formula)
    return cell(f"{r.formula} (traced size differs)", r.formula, "red")
