"""What ``cnnscope memory`` shows (a ``MemoryPlan``) as a ``Document``. No torch."""

from __future__ import annotations

import cnnscope.results as results
from cnnscope.analysis.memory import CATEGORIES, MemoryPlan, attention_lines
from cnnscope.report.document import Column, Document, Section, cell, row
from cnnscope.units import bytes_h, shape, thousands

LABELS = {
    "parameters": "parameters",
    "buffers": "buffers",
    "gradients": "gradients",
    "optimizer_state": "optimizer state",
    "input": "input + target",
    "activations": "activations (saved for backward)",
    "transient": "largest transient",
}


def label(plan: MemoryPlan, category: str) -> str:
    """In a forward pass without autograd nothing is saved for backward: what is alive
    besides parameters and input is the pass's own outputs, the figure ``compare``
    calls peak activations."""
    if plan.inference and category == "transient":
        return "activations (forward pass)"
    return LABELS[category]


BRIEF = ("peak: most tensor bytes alive at once in a steady-state step; kernel workspaces, "
         "allocator caching and the CUDA context not included (--explain: in full)")


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
        if plan.every_batch_fits:
            lines.append(f"every batch up to the search limit {thousands(plan.search_limit)} "
                         f"fits {bytes_h(plan.budget_bytes)}; shown at the limit "
                         f"(batches tried: {tried})")
        else:
            lines.append(f"largest batch that fits {bytes_h(plan.budget_bytes)}: "
                         f"{plan.fit_batch} (batches tried: {tried})")
    lines.append(f"params {thousands(plan.params)} (trainable {thousands(plan.trainable_params)})")
    lines.extend(attention_lines(plan))
    lines.extend(plan.notes)
    lines.append("Convention: " + plan.convention)
    return lines


@results.document.register(MemoryPlan)
def document(plan: MemoryPlan, *, depth: int = 1, top: int = 10) -> Document:
    """What is alive at the peak, by category; then where the saved activations live,
    grouped to module ``depth``, the ``top`` largest (0: all). CSV: one long table of
    categories, the peak and every module's saved bytes."""
    columns = (Column("at the peak"), Column("bytes", right=True), Column("size", right=True),
               Column("share", right=True))
    rows = [row(label(plan, c), thousands(plan.breakdown[c]), bytes_h(plan.breakdown[c]),
                _share(plan.breakdown[c], plan.peak_bytes)) for c in CATEGORIES]
    rows.append(row(*(cell(t, style="bold") for t in (
        "peak", thousands(plan.peak_bytes), bytes_h(plan.peak_bytes))), "100.0%", total=True))
    sections = [Section(columns, tuple(rows))]
    modules = by_module(plan, depth)
    if modules:
        total = sum(n for _, n in modules)
        shown = modules[:top] if top else modules
        mrows = [row(name, thousands(n), bytes_h(n), _share(n, total)) for name, n in shown]
        if len(shown) < len(modules):
            rest = sum(n for _, n in modules[len(shown):])
            mrows.append(row(f"({len(modules) - len(shown)} more)", thousands(rest),
                             bytes_h(rest), _share(rest, total), markdown=False))
        mrows.append(row(*(cell(t, style="bold") for t in (
            "total saved", thousands(total), bytes_h(total))), "100.0%", total=True,
            markdown=False))
        mcols = (Column("module", shorten=20), Column("saved for backward", right=True),
                 Column("size", right=True), Column("share", right=True))
        sections.append(Section(mcols, tuple(mrows),
                                title=f"where the activation memory lives (depth {depth})"))
    long_form = [row("category", c, cell("", plan.breakdown[c])) for c in CATEGORIES]
    long_form.append(row("peak", "peak_bytes", cell("", plan.peak_bytes)))
    long_form += [row("saved_by_module", name, cell("", n)) for name, n in modules]
    sections.append(Section((Column("kind", csv="kind", shown=False),
                             Column("name", csv="name", shown=False),
                             Column("bytes", csv="bytes", shown=False)), tuple(long_form)))
    return Document(title(plan), tuple(sections), tuple(footer_lines(plan)),
                    data=plan.to_dict(), explained=("Convention: " + plan.convention,),
                    brief=(BRIEF,))


def _share(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"
