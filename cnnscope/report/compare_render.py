"""What ``cnnscope compare`` shows (a ``Comparison``) as a ``Document``: one column per model.

CSV and JSON keep exact integers (CSV: one row per model); the table and Markdown show
human units with the exact parameter count.
"""

from __future__ import annotations

from typing import Any

import cnnscope.results as results
from cnnscope.analysis.compare import Comparison, ModelSummary, flat_row, format_ratio
from cnnscope.report.document import Column, Document, Section, cell, row
from cnnscope.units import bytes_h, human, shape, thousands


def format_rf(rf: Any) -> str:
    """Receptive field as text: 212 -> '212', (212, 212) -> '212', (3, 5) -> '3x5'."""
    if rf is None:
        return "-"
    if isinstance(rf, (list, tuple)):
        vals = ["-" if v is None else str(v) for v in rf]
        return vals[0] if len(set(vals)) == 1 else "x".join(vals)
    return str(rf)


def _ratio_cell(c: Comparison, m: ModelSummary, key: str) -> str:
    v = c.ratios(m)[key]
    return "-" if v is None else format_ratio(v)


def rows(c: Comparison) -> list[tuple[str, list[str]]]:
    """(label, one cell per model) for the table and Markdown renderers."""
    ms = c.models
    out = [
        ("input", [f"{m.batch}x{shape(m.input_size)}" for m in ms]),
        ("params", [thousands(m.totals.params) for m in ms]),
        ("param bytes", [bytes_h(m.param_bytes) for m in ms]),
        ("MACs", [human(m.totals.macs, "MAC") for m in ms]),
        ("FLOPs", [human(m.totals.flops, "FLOP") for m in ms]),
        ("depth", [str(m.depth) for m in ms]),
        ("receptive field", [format_rf(m.receptive_field) for m in ms]),
        ("peak activations", [bytes_h(m.peak.bytes) for m in ms]),
        ("output", [", ".join(shape(s) for s in m.output_shapes) for m in ms]),
    ]
    if any(m.bench for m in ms):
        out.append(("latency ms", [f"{m.bench.latency_ms:.3f}" if m.bench else "-" for m in ms]))
        out.append(("samples/s",
                    [f"{m.bench.throughput:,.1f}" if m.bench else "-" for m in ms]))
        out.append(("timed on", [m.bench.device if m.bench else "-" for m in ms]))
    out.append(("params ratio", [_ratio_cell(c, m, "params") for m in ms]))
    out.append(("MACs ratio", [_ratio_cell(c, m, "macs") for m in ms]))
    return out


def footer_lines(c: Comparison) -> list[str]:
    lines = [f"ratios against the first model, {c.reference.model}:"]
    lines += [c.ratio_line(m) for m in c.models[1:]]
    lines.append(_columns_line(c))
    timed = {(m.bench.device, m.bench.device_name) for m in c.models if m.bench}
    if timed:
        where = ", ".join(f"{d} ({n})" if n else d for d, n in sorted(timed))
        lines.append(f"latency: median of timed forward passes (inference, {c.dtype}, batch "
                     f"{c.reference.batch}) on {where}; samples/s = batch / latency.")
    lines.extend(c.notes)
    lines.append("Convention: " + c.convention)
    return lines


def _columns_line(c: Comparison) -> str:
    return (f"bytes at {c.dtype}. depth: weighted layers (conv, linear) on the deepest "
            "path. receptive field: of the last feature map, in input pixels. peak "
            "activations: the most bytes of tensors one inference forward pass creates "
            "alive at once, the input not counted (the caller holds it throughout; "
            "'cnnscope memory --inference' shows both).")


def brief(c: Comparison) -> str:
    """What a table shows in place of the conventions: at most two lines at 80 columns."""
    return (f"MACs: multiply-accumulates, biases excluded; depth: weighted layers on the "
            f"deepest path; bytes at {c.dtype} (--explain: in full)")


@results.document.register(Comparison)
def document(c: Comparison) -> Document:
    """One column per model (the table is cut into parts when they do not fit the page);
    CSV: one row per model with exact integers and the ratios to the first model."""
    labels = (Column("", nowrap=True), *(Column(m.model, right=True, nowrap=True) for m in c.models))
    shown = Section(labels, tuple(row(label, *cells) for label, cells in rows(c)),
                    title=f"compare ({c.dtype})", layout="parts")
    flat = [flat_row(c, m) for m in c.models]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    exact = Section(tuple(Column(k, csv=k, shown=False) for k in keys),
                    tuple(row(*(cell("", _exact(f.get(k))) for k in keys)) for f in flat))
    return Document(f"compare ({c.dtype})", (shown, exact), tuple(footer_lines(c)),
                    data=c.to_dict(), explained=(_columns_line(c), "Convention: " + c.convention),
                    brief=(brief(c),))


def _exact(v: Any) -> Any:
    """A CSV cell: the exact figure; one that is not known (no timing) is empty."""
    return "" if v is None else v
