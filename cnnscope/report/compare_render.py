"""Renderers of ``cnnscope compare``: one column per model; rich, CSV, JSON, Markdown.

CSV and JSON keep exact integers (CSV: one row per model, built with pandas); the table
and Markdown show human units with the exact parameter count.
"""

from __future__ import annotations

from typing import Any

from cnnscope.analysis.compare import Comparison, ModelSummary, format_ratio
from cnnscope.report.io import strict_json
from cnnscope.report.units import bytes_h, human, shape, thousands


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
    lines.append(f"bytes at {c.dtype}. depth: weighted layers (conv, linear) on the deepest "
                 "path. receptive field: of the last feature map, in input pixels. peak "
                 "activations: live tensors of one inference forward pass, input included.")
    timed = {(m.bench.device, m.bench.device_name) for m in c.models if m.bench}
    if timed:
        where = ", ".join(f"{d} ({n})" if n else d for d, n in sorted(timed))
        lines.append(f"latency: median of timed forward passes (inference, {c.dtype}, batch "
                     f"{c.reference.batch}) on {where}; samples/s = batch / latency.")
    lines.extend(c.notes)
    lines.append("Convention: " + c.convention)
    return lines


def render_rich(c: Comparison, console, wide: bool = False) -> None:
    """Print the comparison as a Rich table, one column per model.

    Too many models for the page: the table is printed in parts, each with the row labels
    and as many models as fit (``wide``: one table, however wide). Boxed on a terminal,
    plain (a rule under the header, no box) when piped or written to a file.
    """
    from rich import box
    from rich.table import Table

    from cnnscope.report.boxtable import split_columns, split_note

    table_rows = rows(c)
    style = box.HEAVY_HEAD if console.is_terminal else box.SIMPLE_HEAD

    def make(indices: list[int], title: str | None = f"compare ({c.dtype})") -> Table:
        table = Table(title=title, header_style="bold", box=style)
        for i in indices:
            if i == 0:
                table.add_column("", style="bold", no_wrap=True)
            else:
                table.add_column(c.models[i - 1].model, justify="right", no_wrap=True)
        for label, cells in table_rows:
            row = [label, *cells]
            table.add_row(*(row[i] for i in indices))
        return table

    n = len(c.models) + 1
    parts = [list(range(n))] if wide else split_columns(console, make, n)
    for k, indices in enumerate(parts):
        title = f"compare ({c.dtype})" + (f", part {k + 1} of {len(parts)}" if len(parts) > 1 else "")
        console.print(make(indices, title), crop=False)
    for line in split_note(len(parts), console.width) + footer_lines(c):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def to_csv(c: Comparison) -> str:
    """One row per model with exact integers and the ratios to the first model."""
    return c.to_pandas().to_csv(index=False, lineterminator="\n")


def to_json(c: Comparison) -> str:
    """``{"models": [one object per model with a "totals" object, ...], ...}``."""
    return strict_json(c.to_dict(), indent=2) + "\n"


def to_markdown(c: Comparison) -> str:
    """A GitHub-flavoured Markdown table, one column per model."""
    head = "| | " + " | ".join(m.model for m in c.models) + " |"
    sep = "| --- | " + " | ".join("---:" for _ in c.models) + " |"
    out = [f"## compare ({c.dtype})", "", head, sep]
    for label, cells in rows(c):
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("")
    out.extend(f"- {line}" for line in footer_lines(c))
    return "\n".join(out) + "\n"
