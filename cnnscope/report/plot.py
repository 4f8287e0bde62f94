"""``compare --plot FILE.png|svg``: params vs MACs, bubble area = peak activation memory.

matplotlib is an optional extra (``pip install 'cnnscope[plot]'``); without it the
command fails with a one-line message saying so. The figure is written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

from cnnscope.analysis.compare import Comparison
from cnnscope.errors import InvalidOptionError, UserFileError
from cnnscope.report.io import write_bytes_atomic
from cnnscope.report.units import bytes_h

FORMATS = {".png": "png", ".svg": "svg"}


class PlotUnavailableError(InvalidOptionError):
    """matplotlib is not installed."""


def check_plot_target(path: str) -> str:
    """The format of ``path`` (png/svg), and matplotlib present; checked before any work."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InvalidOptionError(f"cannot plot to {path!r}", "the file must end in .png or .svg")
    folder = Path(path).parent
    if str(folder) and not folder.exists():
        raise UserFileError(f"folder {str(folder)!r} does not exist", "create it first")
    require_matplotlib()
    return fmt


def require_matplotlib() -> None:
    """A one-line error naming the extra to install when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotUnavailableError("--plot needs matplotlib, which is not installed",
                                   "pip install 'cnnscope[plot]'") from None


def plot_comparison(c: Comparison, path: str) -> Path:
    """Draw params (x) vs MACs (y), log-log, each model labelled; write ``path``."""
    fmt = check_plot_target(path)
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display needed; never opens a window
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    xs = [m.totals.params / 1e6 for m in c.models]
    ys = [m.totals.macs / 1e9 for m in c.models]
    peaks = [m.peak.bytes for m in c.models]
    biggest = max(peaks) or 1
    # Bubble *area* proportional to peak activation memory; the largest is 2000 pt^2.
    sizes = [max(30.0, 2000.0 * p / biggest) for p in peaks]
    ax.scatter(xs, ys, s=sizes, alpha=0.45, edgecolors="black", linewidths=0.8)
    for m, x, y in zip(c.models, xs, ys):
        ax.annotate(f"{m.model}\n{bytes_h(m.peak.bytes)}", (x, y), textcoords="offset points",
                    xytext=(6, 6), fontsize=8)
    if all(v > 0 for v in xs + ys):
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel("MACs (billions, multiply-accumulates)")
    ax.set_title(f"params vs MACs (bubble area: peak activation memory, {c.dtype})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(0.25)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return write_bytes_atomic(path, buf.getvalue())
