"""Renderers of one model's layer table: rich, CSV, JSON, Markdown.

Each takes the rows to show (already grouped) and the report they came from.
"""

from __future__ import annotations

from typing import Sequence

from cnnscope.report.io import strict_json
from cnnscope.report.units import human, shape, thousands
from cnnscope.trace.records import (
    LayerRecord,
    ModelReport,
    layer_to_dict,
    layers_to_csv,
)

COLUMNS = ("name", "type", "output_shape", "params", "macs", "flops", "activations")

BACKWARD_CONVENTION = (
    "bwd: backward work counted from the ops autograd runs on the meta device (gradient of "
    "ones at every output; the loss and the optimizer are not counted): input gradients "
    "only where one is needed (none for the first layer), weight gradients only for "
    "trainable parameters; batch norm, activations and pooling with their own elementwise "
    "backward (README 'Counted backward')."
)


def _has_backward(report: ModelReport) -> bool:
    return report.totals.backward_macs is not None


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
        f"MACs {thousands(t.macs)} ({human(t.macs)}MAC)   FLOPs {thousands(t.flops)} ({human(t.flops)}FLOP)"
        if report.counter != "fvcore" else  # fvcore counts multiply-adds only: no FLOPs
        f"MACs {thousands(t.macs)} ({human(t.macs)}MAC, fvcore's multiply-adds)   "
        "FLOPs: not computed (fvcore counts multiply-adds only)",
        f"output {', '.join(shape(s) for s in report.output_shapes)}",
    ]
    if _has_backward(report):
        lines.insert(2, f"backward MACs {thousands(t.backward_macs)} ({human(t.backward_macs)}MAC)"
                        f"   backward FLOPs {thousands(t.backward_flops)} "
                        f"({human(t.backward_flops)}FLOP)   step (fwd + bwd) MACs "
                        f"{thousands(t.macs + t.backward_macs)}")
    if report.unsupported:
        ops = ", ".join(f"{op} x{n}" for op, n in report.unsupported)
        lines.append(f"UNSUPPORTED ops (no cost formula, not counted): {ops}")
    lines.extend(report.notes)
    lines.append("Convention: " + report.convention)
    if _has_backward(report):
        lines.append(BACKWARD_CONVENTION)
    return lines


# Fitting a narrow page: geometry goes first, then FLOPs (2 x MACs + the elementwise
# work; MACs stay), then the output shape, then the type. Names shorten in the middle;
# the name, params and MACs always stay; numbers are never cut.
# With the counted backward (--train), MACs fwd/bwd stay and both FLOPs columns go third.
def _columns(backward: bool = False):
    from cnnscope.report.boxtable import Column

    costs = ([Column("MACs fwd", right=True), Column("MACs bwd", right=True),
              Column("FLOPs fwd", right=True, drop=3), Column("FLOPs bwd", right=True, drop=3)]
             if backward else [Column("MACs", right=True), Column("FLOPs", right=True, drop=3)])
    return [Column("layer", shorten=20), Column("type", shorten=11, drop=1),
            Column("geometry", fold=True, drop=4), Column("output", right=True, drop=2),
            Column("params", right=True), *costs]


def render_rich(report: ModelReport, rows: Sequence[LayerRecord], console,
                wide: bool = False) -> None:
    """Print the table of ``rows`` with totals and the counting convention.

    Laid out by ``boxtable`` (Rich's look, in linear time: a thousand-layer model prints
    as fast as it traces) and fitted to the console (``wide``: every column, whole).
    Rows are grouped by top-level module.
    """
    from cnnscope.report.boxtable import SECTION, print_footer, print_table

    bwd = _has_backward(report)
    columns = _columns(bwd)
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
        costs = [r.macs, r.backward_macs or 0, r.flops, r.backward_flops or 0] if bwd \
            else [r.macs, r.flops]
        table.append([name, r.type, _geometry(r), shape(r.output_shape[1:]),
                      thousands(r.params), *map(thousands, costs)])
    t = report.totals
    totals = [t.macs, t.backward_macs, t.flops, t.backward_flops] if bwd else [t.macs, t.flops]
    table.append(SECTION)
    table.append([("total", "bold"), "", "", "", (thousands(t.params), "bold"),
                  *((thousands(v), "bold") for v in totals)])
    fitted = print_table(console, columns, table, title=title(report), wide=wide)
    print_footer(console, fitted + footer_lines(report))


def to_csv(report: ModelReport, rows: Sequence[LayerRecord]) -> str:
    """One row per layer in the one layer schema (``LAYER_COLUMNS``): the same columns
    and empty cells as ``ModelReport.to_csv()`` and the report's ``<model>.layers.csv``."""
    return layers_to_csv(rows)


_LAYERS = "@@layers@@"  # placeholder spliced out of the indented document


def to_json(report: ModelReport, rows: Sequence[LayerRecord]) -> str:
    """``totals`` object plus a ``layers`` list (the rows shown), exact integers."""
    data = report.to_dict()
    data["layers"] = _LAYERS
    head, tail = strict_json(data, indent=2).split(strict_json(_LAYERS))
    # One layer per line, each by the C encoder: indent=2 on thousands of layers is slow
    # (Python's encoder) and makes a file no easier to read or diff.
    layers = ",\n".join("    " + strict_json(layer_to_dict(r)) for r in rows)
    return f"{head}[\n{layers}\n  ]{tail}\n" if rows else f"{head}[]{tail}\n"


def to_markdown(report: ModelReport, rows: Sequence[LayerRecord]) -> str:
    """A GitHub-flavoured Markdown table, with totals and the convention below."""
    if _has_backward(report):
        return _markdown_with_backward(report, rows)
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


def _markdown_with_backward(report: ModelReport, rows: Sequence[LayerRecord]) -> str:
    out = [f"## {title(report)}", "",
           "| layer | type | geometry | output | params | MACs fwd | MACs bwd | FLOPs fwd | FLOPs bwd |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        out.append(f"| {r.name} | {r.type} | {_geometry(r)} | {shape(r.output_shape[1:])} | "
                   f"{thousands(r.params)} | {thousands(r.macs)} | {thousands(r.backward_macs or 0)}"
                   f" | {thousands(r.flops)} | {thousands(r.backward_flops or 0)} |")
    t = report.totals
    out.append(f"| **total** | | | | **{thousands(t.params)}** | **{thousands(t.macs)}** | "
               f"**{thousands(t.backward_macs)}** | **{thousands(t.flops)}** | "
               f"**{thousands(t.backward_flops)}** |")
    out.append("")
    out.extend(f"- {line}" for line in footer_lines(report))
    return "\n".join(out) + "\n"
