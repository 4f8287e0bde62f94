"""``memory --plot FILE.png|svg``: the peak's breakdown and where activation memory lives.

matplotlib is optional (``pip install 'cnnscope[plot]'``); without it the command fails
before any work with a one-line message. The format follows the file name (PNG or SVG)
and the figure is written atomically. Follows ``cnnscope.report.plot``.
"""

from __future__ import annotations

import io
from pathlib import Path

from cnnscope.analysis.memory import CATEGORIES, MemoryPlan
from cnnscope.fileio import write_bytes_atomic
from cnnscope.report.plot import check_plot_target, file_matplotlib  # noqa: F401 - re-exported
from cnnscope.units import bytes_h


def plot_memory(plan: MemoryPlan, path: str, *, depth: int = 1, top: int = 10) -> Path:
    """Left: the bytes alive at the peak, by category. Right: bytes saved for backward by
    module (grouped to ``depth``), the ``top`` largest. Writes ``path``."""
    fmt = check_plot_target(path)
    file_matplotlib()  # Agg whatever MPLBACKEND says: files only, no window
    from matplotlib.figure import Figure

    from cnnscope.report.memory_render import by_module, label, title

    fig = Figure(figsize=(11, 4.8), dpi=120)
    left = fig.add_subplot(1, 2, 1)
    mib = [plan.breakdown[c] / 2**20 for c in CATEGORIES]
    bars = left.barh([label(plan, c) for c in CATEGORIES], mib, color="tab:blue", alpha=0.7)
    for bar, c in zip(bars, CATEGORIES):
        left.annotate(bytes_h(plan.breakdown[c]), (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                      xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("MiB alive at the peak (2^20 bytes)")
    left.set_title(f"peak {bytes_h(plan.peak_bytes)} ({plan.peak_phase})", fontsize=10)
    left.margins(x=0.3)
    right = fig.add_subplot(1, 2, 2)
    modules = by_module(plan, depth)[:top]
    if modules:
        right.barh([m for m, _ in modules], [n / 2**20 for _, n in modules], color="tab:orange",
                   alpha=0.7)
        right.invert_yaxis()
    right.set_xlabel("MiB saved for backward")
    right.set_title(f"activation memory by module (depth {depth})", fontsize=10)
    fig.suptitle(title(plan), fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return write_bytes_atomic(path, buf.getvalue())
