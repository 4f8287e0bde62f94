"""Renderers of ``cnnscope shape``: rich table, CSV, JSON, Markdown (no arithmetic here)."""

from __future__ import annotations

import csv
import io

from cnnscope.report.io import strict_json
from cnnscope.report.units import shape

FORMULA_NOTE = ("conv/pool: out = floor((n + 2p - d(k-1) - 1)/s + 1) (ceil with ceil_mode, "
                "dropping a last window that would start in the padding); transposed conv: "
                "out = (n - 1)s - 2p + d(k-1) + output_padding + 1")


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


def render_rich(result, console, wide: bool = False) -> None:
    """The table fitted to the console: on a narrow page the input column goes first, then
    the type; formulas fold at spaces (``wide``: every column, unfolded)."""
    from cnnscope.report.boxtable import Column, print_footer, print_table

    columns = [Column("layer", shorten=20), Column("type", shorten=11, drop=1),
               Column("input", right=True, drop=2), Column("output", right=True),
               Column("formula", fold=True)]
    rows = [[r.name, r.type, shape(r.input_shape[1:]), shape(r.output_shape[1:]),
             r.formula if r.consistent else (f"{r.formula} (traced size differs)", "red")]
            for r in result.rows]
    fitted = print_table(console, columns, rows, title=title(result), wide=wide)
    print_footer(console, fitted + footer_lines(result))


def to_csv(result) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "type", "input_shape", "output_shape", "formula", "consistent"])
    for r in result.rows:
        w.writerow([r.name, r.type, shape(r.input_shape), shape(r.output_shape), r.formula,
                    int(r.consistent)])
    return buf.getvalue()


def to_json(result) -> str:
    data = result.to_dict()
    data["formulas"] = FORMULA_NOTE
    return strict_json(data, indent=2) + "\n"


def to_markdown(result) -> str:
    out = [f"## {title(result)}", "", "| layer | type | input | output | formula |",
           "| --- | --- | ---: | ---: | --- |"]
    for r in result.rows:
        out.append(f"| {r.name} | {r.type} | {shape(r.input_shape[1:])} | "
                   f"{shape(r.output_shape[1:])} | {r.formula} |")
    out.append("")
    out.extend(f"- {line.strip()}" for line in footer_lines(result))
    return "\n".join(out) + "\n"
