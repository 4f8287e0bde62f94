"""Renderers of a memory plan (``cnnscope memory``): rich, CSV, JSON, Markdown. No torch."""

from __future__ import annotations

import csv
import io

from cnnscope.analysis.memory import CATEGORIES, MemoryPlan
from cnnscope.report.io import strict_json
from cnnscope.report.units import bytes_h, shape, thousands

LABELS = {
    "parameters": "parameters",
    "buffers": "buffers",
    "gradients": "gradients",
    "optimizer_state": "optimizer state",
    "input": "input + target",
    "activations": "activations (saved for backward)",
    "transient": "largest transient",
}


def by_module(plan: MemoryPlan, depth: int) -> list[tuple[str, int]]:
    """Bytes saved for backward grouped to module depth ``depth`` (0: every module)."""
    groups: dict[str, int] = {}
    for name, n in plan.saved_by_module:
        key = name if not depth or name.startswith("<") else ".".join(name.split(".")[:depth])
        groups[key] = groups.get(key, 0) + n
    return sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))


def title(plan: MemoryPlan) -> str:
    what = "inference (forward)" if plan.inference else f"training step, {plan.optimizer}"
    layout = ", channels-last" if plan.channels_last else ""
    return (f"{plan.model}  input {plan.batch}x{shape(plan.input_size)}  {plan.dtype}  "
            f"{what}{layout}  (meta)")


def footer_lines(plan: MemoryPlan) -> list[str]:
    lines = [f"peak {bytes_h(plan.peak_bytes)} ({thousands(plan.peak_bytes)} bytes), reached "
             f"in the {plan.peak_phase} pass after {plan.peak_op}"]
    if plan.fit_batch is not None:
        tried = ", ".join(f"{b}: {bytes_h(p)}" for b, p in plan.tried)
        lines.append(f"largest batch that fits {bytes_h(plan.budget_bytes)}: {plan.fit_batch} "
                     f"(batches tried: {tried})")
    lines.append(f"params {thousands(plan.params)} (trainable {thousands(plan.trainable_params)})")
    lines.extend(plan.notes)
    lines.append("Convention: " + plan.convention)
    return lines


def render_rich(plan: MemoryPlan, console, *, depth: int = 1, top: int = 10) -> None:
    from cnnscope.report.boxtable import SECTION, Column, box_table

    cols = [Column("at the peak"), Column("bytes", right=True), Column("size", right=True),
            Column("share", right=True)]
    rows: list = []
    for c in CATEGORIES:
        n = plan.breakdown[c]
        rows.append([LABELS[c], thousands(n), bytes_h(n), _share(n, plan.peak_bytes)])
    rows.append(SECTION)
    rows.append([("peak", "bold"), (thousands(plan.peak_bytes), "bold"),
                 (bytes_h(plan.peak_bytes), "bold"), "100.0%"])
    console.print(box_table(cols, rows, title=title(plan), max_width=console.width),
                  highlight=False, soft_wrap=True)
    modules = by_module(plan, depth)
    if modules:
        total = sum(n for _, n in modules)
        shown = modules[:top] if top else modules
        mrows: list = [[name, thousands(n), bytes_h(n), _share(n, total)] for name, n in shown]
        if len(shown) < len(modules):
            rest = sum(n for _, n in modules[len(shown):])
            mrows.append([f"({len(modules) - len(shown)} more)", thousands(rest), bytes_h(rest),
                          _share(rest, total)])
        mrows.append(SECTION)
        mrows.append([("total saved", "bold"), (thousands(total), "bold"),
                      (bytes_h(total), "bold"), "100.0%"])
        mcols = [Column("module", fold=True), Column("saved for backward", right=True),
                 Column("size", right=True), Column("share", right=True)]
        console.print(box_table(mcols, mrows, title=f"where the activation memory lives "
                                f"(depth {depth})", max_width=console.width),
                      highlight=False, soft_wrap=True)
    for line in footer_lines(plan):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _share(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"


def to_json(plan: MemoryPlan) -> str:
    return strict_json(plan.to_dict(), indent=2) + "\n"


def to_csv(plan: MemoryPlan, *, depth: int = 1) -> str:
    """One row per category at the peak, then one per module (saved for backward)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["kind", "name", "bytes"])
    for c in CATEGORIES:
        w.writerow(["category", c, plan.breakdown[c]])
    w.writerow(["peak", "peak_bytes", plan.peak_bytes])
    for name, n in by_module(plan, depth):
        w.writerow(["saved_by_module", name, n])
    return buf.getvalue()


def to_markdown(plan: MemoryPlan, *, depth: int = 1, top: int = 10) -> str:
    out = [f"## {title(plan)}", "", "| at the peak | bytes | size | share |",
           "| --- | ---: | ---: | ---: |"]
    for c in CATEGORIES:
        n = plan.breakdown[c]
        out.append(f"| {LABELS[c]} | {thousands(n)} | {bytes_h(n)} | {_share(n, plan.peak_bytes)} |")
    out.append(f"| **peak** | **{thousands(plan.peak_bytes)}** | **{bytes_h(plan.peak_bytes)}** | 100.0% |")
    modules = by_module(plan, depth)
    if modules:
        total = sum(n for _, n in modules)
        out += ["", "| module | saved for backward | size | share |", "| --- | ---: | ---: | ---: |"]
        for name, n in (modules[:top] if top else modules):
            out.append(f"| {name} | {thousands(n)} | {bytes_h(n)} | {_share(n, total)} |")
    out.append("")
    out.extend(f"- {line}" for line in footer_lines(plan))
    return "\n".join(out) + "\n"
