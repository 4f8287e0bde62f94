"""What ``cnnscope params/summary`` shows: one model's layer table, as a ``Document``.

It takes the report and the rows to show (already grouped by ``--depth``).
"""

from __future__ import annotations

from typing import Sequence

import cnnscope.results as results
from cnnscope.report.document import (
    SECTION_RULE,
    Column,
    Document,
    Row,
    Section,
    cell,
    row,
)
from cnnscope.trace.records import (
    BACKWARD_COLUMNS,
    LAYER_COLUMNS,
    LayerRecord,
    ModelReport,
    layer_columns,
    layer_csv_cell,
    layer_to_dict,
)
from cnnscope.units import human, shape, thousands

BACKWARD_CONVENTION = (
    "bwd: backward work counted from the ops autograd runs on the meta device (gradient of "
    "ones at every output; the loss and the optimizer are not counted): input gradients "
    "only where one is needed (none for the first layer), weight gradients only for "
    "trainable parameters; batch norm, activations and pooling with their own elementwise "
    "backward (docs/training.md)."
)


# What a table shows in place of the conventions (``--explain``: the full text), at
# most two lines at 80 columns: what the columns on screen count.
BRIEF = ("MACs: multiply-accumulates, biases excluded; FLOPs: 2 x MACs + bias adds + "
         "elementwise work; params: nn.Parameters, no buffers (--explain: in full)")
FVCORE_BRIEF = ("MACs: fvcore's count, 1 per multiply-add of conv/linear/matmul plus its "
                "own rules; no FLOPs (--explain: in full)")
BRIEF_BACKWARD = ("MACs: multiply-accumulates, biases excluded; FLOPs: 2 x MACs + bias adds + "
                  "elementwise work; bwd: the ops autograd runs (--explain: in full)")


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
def _columns(backward: bool = False) -> tuple[Column, ...]:
    costs = ((Column("MACs fwd", csv="macs", right=True),
              Column("MACs bwd", csv="backward_macs", right=True),
              Column("FLOPs fwd", csv="flops", right=True, drop=3),
              Column("FLOPs bwd", csv="backward_flops", right=True, drop=3))
             if backward else (Column("MACs", csv="macs", right=True),
                               Column("FLOPs", csv="flops", right=True, drop=3)))
    shown = (Column("layer", csv="name", shorten=20), Column("type", csv="type", drop=1),
             Column("geometry", fold=True, drop=4),
             Column("output", csv="output_shape", right=True, drop=2),
             Column("params", csv="params", right=True), *costs)
    in_table = {c.csv for c in shown}
    # the rest of the one layer schema: in the CSV only
    schema = LAYER_COLUMNS + BACKWARD_COLUMNS if backward else LAYER_COLUMNS
    return shown + tuple(Column(k, csv=k, shown=False) for k in schema if k not in in_table)


@results.document.register(ModelReport)
def document(report: ModelReport, rows: Sequence[LayerRecord] | None = None) -> Document:
    """The table of ``rows`` (default: every layer; grouped rows for ``--depth``) with
    totals and the counting convention; a rule between top-level modules.

    CSV: the one layer schema (``LAYER_COLUMNS``), the same columns and empty cells as
    ``ModelReport.to_csv()``; JSON: ``to_dict()`` with the rows shown as ``layers``.
    """
    rows = report.table_layers() if rows is None else rows
    bwd = _has_backward(report)
    columns = _columns(bwd)
    table: list = []
    previous_top = previous_name = None
    for r in rows:
        top = r.name.split(".")[0]
        if previous_top is not None and top != previous_top and "." in r.name + (previous_name or ""):
            table.append(SECTION_RULE)
        previous_name = r.name
        previous_top = top
        table.append(_row(r, columns, bwd))
    t = report.totals
    totals = [t.macs, t.backward_macs, t.flops, t.backward_flops] if bwd else [t.macs, t.flops]
    bold = [cell(thousands(v), style="bold") for v in (t.params, *totals)]
    table.append(row(cell("total", style="bold"), "", "", "", *bold,
                     *("" for _ in columns[5 + len(totals):]), total=True))
    data = report.to_dict()
    data["layers"] = [layer_to_dict(r) for r in rows]
    explained = ("Convention: " + report.convention,
                 *((BACKWARD_CONVENTION,) if bwd else ()))
    brief = (BRIEF_BACKWARD if bwd else BRIEF) if report.counter != "fvcore" else FVCORE_BRIEF
    return Document(title(report), (Section(columns, tuple(table), csv_order=layer_columns(rows)),),
                    tuple(footer_lines(report)), data=data, compact=("layers",),
                    explained=explained, brief=(brief,))


def _row(r: LayerRecord, columns: Sequence[Column], bwd: bool) -> Row:
    d = layer_to_dict(r)
    exact = {c.csv: layer_csv_cell(d.get(c.csv)) for c in columns if c.csv is not None}
    name = (cell(f"{r.name} (unsupported: {','.join(r.unsupported)})", exact["name"], "red")
            if r.unsupported else cell(r.name, exact["name"]))
    costs = [r.macs, r.backward_macs or 0, r.flops, r.backward_flops or 0] if bwd \
        else [r.macs, r.flops]
    shown = [name, cell(r.type, exact["type"]), cell(_geometry(r)),
             cell(shape(r.output_shape[1:]), exact["output_shape"]),
             cell(thousands(r.params), exact["params"]),
             *(cell(thousands(v), exact[c.csv]) for v, c in zip(costs, columns[5:]))]
    rest = [cell("", exact[c.csv]) for c in columns[len(shown):]]
    return row(*shown, *rest)
