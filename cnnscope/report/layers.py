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
    size = shape(report.input_size)
    return f"{report.model}  input {report.batch}x{size}  ({report.device}, counter: {report.counter})"


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
    """Print a Rich table of ``rows`` with totals and the counting convention."""
    from rich.table import Table

    table = Table(title=title(report), show_lines=False, header_style="bold")
    table.add_column("layer", overflow="fold", ratio=1)
    table.add_column("type", overflow="fold")
    table.add_column("geometry", overflow="fold")
    # Numbers are never cut: numeric columns do not wrap and take the width they need.
    for col in ("output", "params", "MACs", "FLOPs"):
        table.add_column(col, justify="right", no_wrap=True)
    previous_top = previous_name = None
    for r in rows:
        top = r.name.split(".")[0]
        if previous_top is not None and top != previous_top and "." in r.name + (previous_name or ""):
            table.add_section()  # rows are grouped by top-level module
        previous_name = r.name
        previous_top = top
        name = r.name
        if r.unsupported:
            name += " [red](unsupported: " + ",".join(r.unsupported) + ")[/]"
        table.add_row(name, r.type, _geometry(r), shape(r.output_shape[1:]),
                      thousands(r.params), thousands(r.macs), thousands(r.flops))
    t = report.totals
    table.add_section()
    table.add_row("[bold]total[/]", "", "", "", f"[bold]{thousands(t.params)}[/]",
                  f"[bold]{thousands(t.macs)}[/]", f"[bold]{thousands(t.flops)}[/]")
    console.print(table)
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


def to_json(report: ModelReport, rows: Sequence[LayerRecord]) -> str:
    """``totals`` object plus a ``layers`` list (the rows shown), exact integers."""
    data = report.to_dict()
    data["layers"] = [layer_to_dict(r) for r in rows]
    return json.dumps(data, indent=2) + "\n"


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
