"""Pictures, each drawn from the records the tables print (PNG or SVG by the file name).

``compare --plot``: params vs MACs, bubble area = peak activation memory;
``params|flops --plot``: params and MACs per layer (or module) as bars;
``rf --plot``: receptive field and effective stride by layer;
``bench --per-layer --plot``: the roofline, one point per layer and the two measured roofs.

matplotlib is an optional extra (``pip install 'cnnscope[plot]'``); without it the
command fails with a one-line message saying so. The figure is written atomically.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import cnnscope.patches as patches
from cnnscope.analysis.compare import Comparison
from cnnscope.errors import InvalidOptionError, UserFileError
from cnnscope.fileio import same_file, write_bytes_atomic
from cnnscope.units import bytes_h

FORMATS = {".png": "png", ".svg": "svg"}


class PlotUnavailableError(InvalidOptionError):
    """matplotlib is not installed."""


def check_plot_target(path: str, output: str | None = None) -> str:
    """The format of ``path`` (png/svg), and matplotlib present; checked before any work.

    ``output``: the command's ``-o`` file; the same file for both (by name, through a
    symlink, or a hard link) is refused, since the second write would replace the first
    while both were reported written.
    """
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InvalidOptionError(f"cannot plot to {path!r}", "the file must end in .png or .svg")
    if output is not None and same_file(path, output):
        raise InvalidOptionError(f"--plot and -o both name {path!r}",
                                 "give the plot and the report a file each")
    folder = Path(path).parent
    if str(folder) and not folder.exists():
        raise UserFileError(f"folder {str(folder)!r} does not exist", "create it first")
    require_matplotlib()
    return fmt


def require_matplotlib() -> None:
    """A one-line error naming the extra to install when matplotlib is missing."""
    file_matplotlib()


def file_matplotlib():
    """matplotlib with the Agg backend, the one this module draws files with.

    matplotlib reads ``MPLBACKEND`` when it is imported and raises ``ValueError`` for a
    name it does not know; cnnscope never opens a window, so the variable is hidden for
    the import and Agg chosen, whatever the environment says.
    """
    try:
        with _MPLBACKEND_HIDDEN:
            import matplotlib
    except ImportError:
        raise PlotUnavailableError("--plot needs matplotlib, which is not installed",
                                   "pip install 'cnnscope[plot]'") from None
    matplotlib.use("Agg", force=True)
    return matplotlib


def _put_back_mplbackend(saved: str | None) -> None:
    if saved is not None:
        os.environ["MPLBACKEND"] = saved


_MPLBACKEND_HIDDEN = patches.scoped("mplbackend-hidden",
                                    install=lambda: os.environ.pop("MPLBACKEND", None),
                                    remove=_put_back_mplbackend,
                                    observe=lambda: os.environ.get("MPLBACKEND"))


def plot_comparison(c: Comparison, path: str) -> Path:
    """Draw params (x) vs MACs (y), log-log, each model labelled; write ``path``."""
    fmt = check_plot_target(path)
    file_matplotlib()  # Agg whatever MPLBACKEND says: files only, no window
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


# ---------------------------------------------------------------------- shared


def _new_figure(rows: int, width: float = 9.0, height: float = 6.0):
    """A matplotlib Figure (Agg: never opens a window) with ``rows`` stacked axes."""
    file_matplotlib()  # Agg whatever MPLBACKEND says: files only, no window
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120)
    axes = [fig.add_subplot(rows, 1, i + 1) for i in range(rows)]
    return fig, axes


def _save(fig, path: str, fmt: str) -> Path:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return write_bytes_atomic(path, buf.getvalue())


def _layer_ticks(ax, names: list[str], max_labels: int = 40) -> None:
    """Name every row when there are few; otherwise about ``max_labels`` evenly spaced."""
    n = len(names)
    step = max(1, -(-n // max_labels))
    ticks = list(range(0, n, step))
    ax.set_xticks(ticks)
    ax.set_xticklabels([names[i] for i in ticks], rotation=90, fontsize=6)
    ax.set_xlim(-0.6, n - 0.4)


# ---------------------------------------------------------------------- params | flops


def layers_figure(report, rows):
    """Params and MACs of each row (a layer, or a module with ``--depth``), as bars in
    network order. Returns the Figure; its two bar containers hold exactly the rows'
    ``params`` and ``macs``."""
    fig, (ax_p, ax_m) = _new_figure(2, width=max(9.0, min(24.0, 0.12 * len(rows) + 4)), height=7.0)
    names = [r.name for r in rows]
    x = list(range(len(rows)))
    ax_p.bar(x, [r.params for r in rows], color="tab:blue", label="params")
    ax_m.bar(x, [r.macs for r in rows], color="tab:orange", label="MACs")
    ax_p.set_ylabel("parameters")
    ax_m.set_ylabel("MACs (multiply-accumulates)")
    for ax in (ax_p, ax_m):
        ax.grid(True, axis="y", alpha=0.3)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 3))
        _layer_ticks(ax, names)
    ax_p.tick_params(labelbottom=False)
    t = report.totals
    grouping = "module" if any(r.kind == "group" for r in rows) else "layer"
    ax_p.set_title(f"{report.model} ({report.batch}x{'x'.join(map(str, report.input_size))}): "
                   f"params and MACs per {grouping}; totals {t.params:,} params, "
                   f"{t.macs:,} MACs", fontsize=9)
    return fig


def plot_layers(report, rows, path: str) -> Path:
    """``params|flops MODEL --plot FILE``: write ``layers_figure`` to ``path`` (png/svg)."""
    fmt = check_plot_target(path)
    return _save(layers_figure(report, rows), path, fmt)


# ---------------------------------------------------------------------- rf


def rf_points(result) -> tuple[list[str], list[int], list[float]]:
    """(names, receptive field, effective stride) of the layers with a spatial field, in
    order; per layer the largest over the axes (H x W fields: the wider)."""
    names, fields, strides = [], [], []
    for f in result.visible_layers():
        rf = [v for v in f.receptive_field if v is not None]
        js = [v for v in f.effective_stride if v is not None]
        if not rf or not js:
            continue  # global layers (fully connected, global pooling) have no local field
        names.append(f.name)
        fields.append(max(rf))
        strides.append(float(max(js)))
    return names, fields, strides


def rf_figure(result):
    """Receptive field and effective stride growing with depth (log scale, input pixels)."""
    fig, (ax_r, ax_s) = _new_figure(2, height=7.0)
    names, fields, strides = rf_points(result)
    x = list(range(len(names)))
    ax_r.plot(x, fields, marker=".", color="tab:green", label="receptive field")
    ax_s.plot(x, strides, marker=".", color="tab:purple", drawstyle="steps-post",
              label="effective stride")
    size = result.input_size[-1] if result.input_size else None
    if size:
        ax_r.axhline(size, color="grey", linestyle="--", linewidth=0.8)
        ax_r.annotate(f"input width {size}", (0, size), textcoords="offset points",
                      xytext=(4, 4), fontsize=7, color="grey")
    ax_r.set_ylabel("receptive field (pixels)")
    ax_s.set_ylabel("effective stride (pixels)")
    for ax in (ax_r, ax_s):
        ax.set_yscale("log", base=2)
        ax.grid(True, which="both", alpha=0.3)
        _layer_ticks(ax, names)
    ax_r.tick_params(labelbottom=False)
    ax_r.set_title(f"{result.model}: receptive field and effective stride by layer "
                   f"(input {'x'.join(map(str, result.input_size))}; the larger axis)", fontsize=9)
    return fig


def plot_rf(result, path: str) -> Path:
    """``rf MODEL --plot FILE``: write ``rf_figure`` to ``path`` (png/svg)."""
    fmt = check_plot_target(path)
    return _save(rf_figure(result), path, fmt)


# ---------------------------------------------------------------------- roofline


def roofline_points(per_layer) -> tuple[list[str], list[float], list[float], list[str | None]]:
    """(names, intensity FLOP/byte, achieved FLOP/s, bound) of the layers that have both."""
    names, xs, ys, bounds = [], [], [], []
    for layer in per_layer.layers:
        ai, rate = layer.arithmetic_intensity, layer.achieved_flops
        if ai and rate:  # a point needs a positive intensity and rate on log axes
            names.append(layer.name)
            xs.append(ai)
            ys.append(rate)
            bounds.append(layer.bound)
    return names, xs, ys, bounds


def roofline_figure(rows, label_top: int = 8):
    """One panel per benchmark row: one point per layer (forward pass: intensity,
    achieved FLOP/s), the roofs as lines: the matmul ceiling (flat) and intensity x copy
    bandwidth (slope 1 on log-log)."""
    fig, axes = _new_figure(len(rows), width=8.0, height=5.5 * len(rows))
    for ax, row in zip(axes, rows):
        _roofline_panel(ax, row, label_top)
    return fig


def _roofline_panel(ax, row, label_top: int) -> None:
    p = row.per_layer
    names, xs, ys, bounds = roofline_points(p)
    colours = {"memory": "tab:blue", "compute": "tab:red", None: "tab:grey"}
    for kind in ("memory", "compute", None):
        pts = [(x, y) for x, y, b in zip(xs, ys, bounds) if b == kind]
        if pts:
            ax.scatter([x for x, _ in pts], [y for _, y in pts], s=18, alpha=0.7,
                       color=colours[kind], label=f"{kind}-bound layers" if kind else "layers")
    lo = min(xs + [1.0]) / 2
    hi = max(xs + [1.0]) * 2
    if p.peak_flops and p.peak_bandwidth:
        ridge = p.peak_flops / p.peak_bandwidth
        lo, hi = min(lo, ridge / 4), max(hi, ridge * 4)
        ax.plot([lo, ridge], [lo * p.peak_bandwidth, p.peak_flops], color="black", linewidth=1.2,
                label=f"copy bandwidth {p.peak_bandwidth / 1e9:.3g} GB/s")
        ax.plot([ridge, hi], [p.peak_flops, p.peak_flops], color="black", linestyle="--",
                linewidth=1.2, label=f"matmul ceiling {p.peak_flops / 1e9:.3g} GFLOP/s")
    # Name the layers that take the most forward time.
    time_of = {layer.name: layer.fwd_ms for layer in p.layers}
    for i in sorted(range(len(names)), key=lambda i: -time_of[names[i]])[:label_top]:
        ax.annotate(names[i], (xs[i], ys[i]), textcoords="offset points", xytext=(4, 3), fontsize=6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (FLOPs per byte moved, minimal traffic)")
    ax.set_ylabel("achieved FLOP/s (forward)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    roofs = "" if p.peak_flops else " (roofs not measured)"
    ax.set_title(f"roofline: {row.model} b{row.batch} {row.dtype} {row.mode} on "
                 f"{row.device_name}{roofs}", fontsize=9)


def plot_roofline(result, path: str) -> Path:
    """``bench MODEL --per-layer --plot FILE``: one roofline panel per row with layers."""
    fmt = check_plot_target(path)
    rows = [r for r in result.rows if r.per_layer is not None]
    if not rows:
        raise InvalidOptionError("no row has per-layer timings to plot",
                                 "every row failed; see the table")
    return _save(roofline_figure(rows), path, fmt)
