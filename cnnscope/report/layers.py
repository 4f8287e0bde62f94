"""Renderers of one model's layer table: rich, CSV, JSON, Markdown.

Each takes the rows to show (already grouped) and the report they came from.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Sequence

from cnnscope.report.units import human, shape, thousands
from cnnscope.trace.records import LayerRecord, ModelReport, layer_to_dict

COLUMNS = ("name", "type", "output_shape", "params", "macs", "flops", "activations")


def _geometry(r: LayerRecord) -> str:
    parts = []
    if r.kernel_size:
        parts.append("k" + "x".join(map(str, r.kernel_size)))
    if r.stride and any(s != 1 for s in r.stride):
        parts.append("s" + "x".join(map(str, r.stride)))
    if r.padding and any(p != 0 for p in r.padding):
        parts.append("p" + "x".join(map(str, r.padding)))
    if r.dilation and any(d != 1 for d in r.dilation):
        parts.append("d" + "x".join(map(str, r.dilation)))
    if r.groups and r.groups != 1:
        parts.append(f"g{r.groups}")
    return " ".join(parts)


def title(report: ModelReport) -> str:
    sizes = report.input_sizes if len(report.input_sizes) > 1 else (report.input_size,)
    size = " + ".join(f"{report.batch}x{shape(s)}" for s in sizes)
    return f"{report.model}  input {size}  ({report.device}, counter: {report.counter})"


def footer_lines(report: ModelReport) -> list[str]:
    t = report.totals
    lines = [
        f"params {thousands(t.params)} ({human(t.params)}; trainable {thousands(t.trainable_params)}, "
        f"frozen {thousands(t.frozen_params)})",
        f"MACs {thousands(t.macs)} ({human(t.macs)}MAC)   FLOPs {thousands(t.flops)} ({human(t.flops)}FLOP)",
        f"output {', '.join(shape(s) for s in report.output_shapes)}",
    ]
    if report.unsupported:
        ops = ", ".join(f"{op} x{n}" for op, n in report.unsupported)
        lines.append(f"UNSUPPORTED ops (no cost formula, not counted): {ops}")
    lines.extend(report.notes)
    lines.append("Convention: " + report.convention)
    return lines


def render_rich(report: ModelReport, rows: Sequence[LayerRecord], console) -> None:
    """Print the table of ``rows`` with totals and the counting convention.

    Laid out by ``boxtable`` (Rich's look, in linear time: a thousand-layer model prints
    as fast as it traces). Rows are grouped by top-level module.
    """
    from cnnscope.report.boxtable import SECTION, Column, box_table

    columns = [Column("layer", fold=True), Column("type", fold=True),
               Column("geometry", fold=True)]
    # Numbers are never cut: numeric columns do not fold and take the width they need.
    columns += [Column(c, right=True) for c in ("output", "params", "MACs", "FLOPs")]
    table: list = []
    previous_top = previous_name = None
    for r in rows:
        top = r.name.split(".")[0]
        if previous_top is not None and top != previous_top and "." in r.name + (previous_name or ""):
            table.append(SECTION)
        previous_name = r.name
        previous_top = top
        name: object = r.name
        if r.unsupported:
            name = (f"{r.name} (unsupported: {','.join(r.unsupported)})", "red")
        table.append([name, r.type, _geometry(r), shape(r.output_shape[1:]),
                      thousands(r.params), thousands(r.macs), thousands(r.flops)])
    t = report.totals
    table.append(SECTION)
    table.append([("total", "bold"), "", "", "", (thousands(t.params), "bold"),
                  (thousands(t.macs), "bold"), (thousands(t.flops), "bold")])
    console.print(box_table(columns, table, title=title(report), max_width=console.width),
                  highlight=False, soft_wrap=True)
    for line in footer_lines(report):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def to_csv(report: ModelReport, rows: Sequence[LayerRecord]) -> str:
    """One row per layer, exact integers; the convention is in the JSON, not the CSV."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name", "type", "kind", "output_shape", "kernel_size", "stride", "padding",
                     "groups", "params", "trainable_params", "macs", "flops", "activations"])
    for r in rows:
        writer.writerow([r.name, r.type, r.kind, shape(r.output_shape), shape(r.kernel_size),
                         shape(r.stride), shape(r.padding), r.groups or "", r.params,
                         r.trainable_params, r.macs, r.flops, r.activations])
    return buf.getvalue()


_LAYERS = "@@layers@@"  # placeholder spliced out of the indented document


def to_json(report: ModelReport, rows: Sequence[LayerRecord]) -> str:
    """``totals`` object plus a ``layers`` list (the rows shown), exact integers."""
    data = report.to_dict()
    data["layers"] = _LAYERS
    head, tail = json.dumps(data, indent=2).split(json.dumps(_LAYERS))
    # One layer per line, each by the C encoder: indent=2 on thousands of layers is slow
    # (Python's encoder) and makes a file no easier to read or diff.
    layers = ",\n".join("    " + json.dumps(layer_to_dict(r)) for r in rows)
    return f"{head}[\n{layers}\n  ]{tail}\n" if rows else f"{head}[]{tail}\n"


def to_markdown(report: ModelReport, rows: Sequence[LayerRecord]) -> str:
    """A GitHub-flavoured Markdown table, with totals and the convention below."""
    out = [f"## {title(report)}", "",
           "| layer | type | geometry | output | params | MACs | FLOPs |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        out.append(f"| {r.name} | {r.type} | {_geometry(r)} | {shape(r.output_shape[1:])} | "
                   f"{thousands(r.params)} | {thousands(r.macs)} | {thousands(r.flops)} |")
    t = report.totals
    out.append(f"| **total** | | | | **{thousands(t.params)}** | **{thousands(t.macs)}** | "
               f"**{thousands(t.flops)}** |")
    out.append("")
    out.extend(f"- {line}" for line in footer_lines(report))
    return "\n".join(out) + "\n"
