"""What ``cnnscope bench`` shows (a ``BenchResult``) as a ``Document``. No torch.

The sweep's table (drawn by Rich: numbers never cut, a failed row's status in colour) and
its footer, then one part per row timed layer by layer: its per-layer table and notes.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import cnnscope.results as results
from cnnscope.benchmark.records import (
    FLOP_BASIS,
    BenchResult,
    BenchRow,
    LayerTiming,
    PerLayer,
)
from cnnscope.benchmark.roofline import (
    ROOFLINE_BASIS,
    most_time_for_least_work,
    ridge_point,
)
from cnnscope.report.document import Column, Document, Row, Section, cell, row
from cnnscope.units import bytes_h, human, shape

CSV_COLUMNS = (
    "model", "device", "device_name", "batch", "dtype", "mode", "status", "error", "samples",
    "median_ms", "p10_ms", "p25_ms", "p75_ms", "p90_ms", "iqr_ms", "mean_ms",
    "fwd_median_ms", "fwd_iqr_ms", "bwd_median_ms", "bwd_iqr_ms", "opt_median_ms",
    "throughput", "throughput_sustained", "peak_memory_bytes", "peak_memory_kind", "macs",
    "achieved_tflops", "fwd_tflops", "bwd_tflops", "ceiling_tflops", "ceiling_fraction",
    "warmup_iters", "warmup_settled", "channels_last", "compiled", "cuda_graphs", "input_size",
    "spread", "stable", "unstable_causes", "other_cpu", "cpu_steal", "load_average", "threads",
)
LAYER_CSV_COLUMNS = ("model", "batch", "dtype", "mode", "layer", "type", "macs", "fwd_ms",
                     "bwd_ms", "fwd_tflops", "bwd_tflops", "flops", "bytes_moved",
                     "arithmetic_intensity", "achieved_flops", "achieved_bandwidth", "bound")


# ----------------------------------------------------------------------------- numbers


def ms(x: float | None) -> str:
    """Milliseconds with 3-4 significant digits: 0.0123, 1.234, 12.34, 123.4."""
    if x is None:
        return "-"
    if x < 1:
        return f"{x:.4f}"
    if x < 100:
        return f"{x:.2f}"
    return f"{x:.1f}"


def tflops(x: float | None, scale: float = 1.0) -> str:
    """A rate to 3 significant digits (``scale`` 1000: TFLOP/s shown as GFLOP/s)."""
    return "-" if x is None else f"{x * scale:.3g}"


def flops_unit(values) -> tuple[str, float]:
    """("TFLOP/s", 1) for GPU-sized rates; ("GFLOP/s", 1000) when every rate is below 1 TFLOP/s
    (a CPU), so that the column reads 41.2 rather than 0.0412."""
    present = [v for v in values if v is not None]
    if present and max(present) < 1.0:
        return "GFLOP/s", 1000.0
    return "TFLOP/s", 1.0


def gbs(x: float | None) -> str:
    """Bytes/s as GB/s (10^9 bytes per second), 3 significant digits."""
    return "-" if x is None else f"{x / 1e9:.3g}"


def intensity(x: float | None) -> str:
    """FLOPs per byte, 3 significant digits."""
    return "-" if x is None else f"{x:.3g}"


def percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def status_text(r: BenchRow) -> str:
    if r.ok and r.stable is False:  # measured, but not cleanly: the footer says why
        return "unstable"
    if r.ok:
        return "ok" if not r.notes else "ok*"
    return f"{r.status.upper()}: {r.error}" if r.error else r.status.upper()


# ----------------------------------------------------------------------------- text blocks


def title(result: BenchResult) -> str:
    env = result.env
    return f"cnnscope bench on {env.get('device_name', '?')} ({env.get('device', '?')})"


def env_line(env: dict[str, Any]) -> str:
    parts = [f"torch {env.get('torch')}"]
    if env.get("device_type") == "cuda":
        parts += [f"CUDA {env.get('cuda_runtime')}", f"cuDNN {env.get('cudnn')}",
                  f"driver {env.get('driver') or 'unknown'}",
                  f"capability {env.get('compute_capability')}",
                  f"cudnn.benchmark={env.get('cudnn_benchmark')}"]
    else:  # cudnn.benchmark means nothing to a CPU run: not printed (the JSON keeps it)
        threads = f"{env.get('torch_threads')} torch threads"
        if env.get("usable_cores"):
            threads += f" of {env['usable_cores']} usable cores"
        parts += [threads]
        if env.get("load_average"):
            parts.append("load average " + " ".join(str(x) for x in env["load_average"]))
    return ", ".join(parts)


# How a figure is measured: the full text under --explain and in Markdown; a table on a
# terminal shows BRIEF in its place (at most two lines at 80 columns).
METHOD = ("median over the timed iterations after warm-up; IQR = p75 - p25. "
          "train: step = forward + loss + backward + optimizer step (SGD).", FLOP_BASIS)
BRIEF = ("median of timed iterations after warm-up; FLOP/s: 2 x counted MACs / median "
         "(--explain: in full)",)


def footer_lines(result: BenchResult) -> list[str]:
    lines = [env_line(result.env)]
    unit, scale = flops_unit(r.achieved_tflops for r in result.rows)
    for dtype, c in result.ceilings.items():
        how = f"cached, measured {c.measured_at}" if c.cached else f"measured {c.measured_at}"
        lines.append(f"dense matmul ceiling {dtype}: {tflops(c.tflops, scale)} {unit} "
                     f"(torch.mm {c.n}x{c.n}, {how})")
    if result.bandwidth is not None:
        b = result.bandwidth
        how = f"cached, measured {b.measured_at}" if b.cached else f"measured {b.measured_at}"
        lines.append(f"copy bandwidth: {gbs(b.bytes_per_s)} GB/s (copy of {bytes_h(b.nbytes)}: "
                     f"2 x its bytes per copy, {how})")
    if result.env.get("bandwidth_error"):
        lines.append(f"copy bandwidth: not measured ({result.env['bandwidth_error']})")
    for dtype, err in (result.env.get("ceiling_errors") or {}).items():
        lines.append(f"dense matmul ceiling {dtype}: not measured ({err})")
    kinds = sorted({r.peak_memory_kind for r in result.rows if r.peak_memory_kind})
    if kinds:
        lines.append("peak memory: " + "; ".join(kinds))
    lines.extend(METHOD)
    lines.extend(stability_lines(result))
    for r in result.rows:
        for note in r.notes:
            lines.append(f"* {r.model} b{r.batch} {r.dtype} {r.mode}: {note}")
    if result.interrupted:
        lines.append(f"INTERRUPTED: {len(result.rows)} of {result.planned} rows measured.")
    return lines


def stability_lines(result: BenchResult) -> list[str]:
    """One line per unstable row with its causes; an unstable ceiling; the thread hint."""
    lines = []
    unstable = [r for r in result.rows if r.ok and r.stable is False]
    for r in unstable:
        lines.append(f"! unstable: {r.model} b{r.batch} {r.dtype} {r.mode}: "
                     + "; ".join(r.unstable_causes))
    for dtype, c in result.ceilings.items():
        if c.stable is False:
            lines.append(f"! ceiling {dtype} measured under load ({'; '.join(c.causes)}): "
                         "used for this run only, not cached")
    loaded = any("other processes" in cause for r in unstable for cause in r.unstable_causes)
    threads = result.env.get("torch_threads")
    if loaded and isinstance(threads, int) and threads > 1:
        lines.append(f"the machine is loaded: fewer threads (--threads {max(1, threads // 2)}) "
                     "may give steadier figures")
    return lines


def per_layer_lines(p: PerLayer) -> list[str]:
    lines = [f"forward: sum of layers {ms(p.sum_fwd_ms)} ms; whole pass with hooks "
             f"{ms(p.hooked_fwd_ms)} ms; without hooks {ms(p.clean_fwd_ms)} ms "
             f"(medians of {p.samples} iterations)"]
    if p.hooked_bwd_ms is not None:
        lines.append(f"backward: sum of layers {ms(p.sum_bwd_ms)} ms + loss/unhooked "
                     f"{ms(p.loss_bwd_ms)} ms; whole backward with hooks {ms(p.hooked_bwd_ms)} ms; "
                     f"without hooks {ms(p.clean_bwd_ms)} ms")
    lines.append("Forward time of a layer: its own call. Backward time: from its backward's "
                 "start to the next layer's (ops between layers, e.g. residual adds, are "
                 "charged to the layer before them in backward order).")
    lines.extend(roofline_lines(p))
    return lines


def roofline_lines(p: PerLayer) -> list[str]:
    """The roofs and ridge point, the layers that cost most time for least work, the basis."""
    if not any(layer.flops is not None for layer in p.layers):
        return []  # a result written before the roofline existed
    lines = []
    if p.peak_flops and p.peak_bandwidth:
        ridge = ridge_point(p.peak_flops, p.peak_bandwidth)
        memory = sum(1 for layer in p.layers if layer.bound == "memory")
        compute = sum(1 for layer in p.layers if layer.bound == "compute")
        lines.append(f"roofs: {p.peak_flops / 1e9:.3g} GFLOP/s (matmul ceiling), "
                     f"{gbs(p.peak_bandwidth)} GB/s (copy bandwidth); ridge point "
                     f"{ridge:.3g} FLOP/byte: {memory} layers memory-bound, {compute} compute-bound")
        above = [layer for layer in p.layers if layer.achieved_bandwidth
                 and layer.achieved_bandwidth > p.peak_bandwidth]
        if above:
            lines.append(f"{len(above)} layers moved their bytes faster than the copy bandwidth: "
                         "their tensors stayed in cache (the roof is main memory's)")
    else:
        lines.append("roofs not measured (--no-ceiling): no memory/compute verdict")
    waste = most_time_for_least_work(p)
    if waste:
        lines.append("most time for least work (forward): " + "; ".join(
            f"{w.layer.name} ({w.layer.type}) {percent(w.time_share)} of time for "
            f"{percent(w.flop_share)} of FLOPs" for w in waste))
    lines.append(ROOFLINE_BASIS)
    return lines


def top_layers(p: PerLayer, top: int = 0) -> list[LayerTiming]:
    """All layers in execution order, or the ``top`` slowest (forward + backward)."""
    layers = list(p.layers)
    if top and top > 0:
        layers.sort(key=lambda layer: layer.fwd_ms + (layer.bwd_ms or 0.0), reverse=True)
        layers = layers[:top]
    return layers


# ----------------------------------------------------------------------------- tables

# Numbers are never cut: a numeric column takes the width it needs. On a narrow page
# (80 columns) whole columns are left out instead, the highest ``drop`` first; the
# footer says which, and --wide shows all.
#
# sweep table: the model, batch, median and img/s and the status always stay; out first
# the sample count, then the train-only forward and backward split, the spread, the
# memory, the ceiling share and rate, the dtype, the mode.
ROWS_DROP = {"n": 9, "fwd ms": 8, "bwd ms": 7, "IQR ms": 6, "peak memory": 5,
             "of ceiling": 4, "rate": 3, "dtype": 2, "mode": 1}
# per-layer table: the layer, its times, its bound and its share of the time always
# stay; out first the achieved bandwidth, the intensity, the rates, the ceiling share,
# the MACs, the type.
LAYERS_DROP = {"fwd GB/s": 7, "FLOP/byte": 6, "bwd rate": 5, "fwd rate": 4,
               "of ceiling": 3, "MACs": 2, "type": 1}


def _number(header: str, drop: int = 0) -> Column:
    return Column(header, right=True, drop=drop)


def rows_table(result: BenchResult) -> Section:
    """The sweep's table: one row per bench row; a failed row's status in colour."""
    unit, scale = flops_unit(r.achieved_tflops for r in result.rows)
    columns = (Column("model", code=True), _number("batch"),
               Column("dtype", drop=ROWS_DROP["dtype"]), Column("mode", drop=ROWS_DROP["mode"]),
               *(_number(c, ROWS_DROP.get(c, 0)) for c in (
                   "median ms", "IQR ms", "n", "fwd ms", "bwd ms", "img/s", "peak memory")),
               _number(unit, ROWS_DROP["rate"]), _number("of ceiling", ROWS_DROP["of ceiling"]),
               Column("status", fold=True))
    rows = []
    for r in result.rows:
        head = [r.model, str(r.batch), r.dtype, r.mode]
        if r.ok:
            fwd = ms(r.fwd_median_ms) if r.mode == "train" else "-"
            rows.append(row(*head, ms(r.median_ms), ms(r.iqr_ms), str(r.samples), fwd,
                            ms(r.bwd_median_ms), rate(r.throughput), bytes_h(r.peak_memory_bytes),
                            tflops(r.achieved_tflops, scale), percent(r.ceiling_fraction),
                            status_text(r)))
        else:
            style = "yellow" if r.status in ("oom", "unsupported") else "red"
            rows.append(row(*head, *(["-"] * 9), cell(status_text(r), style=style)))
    return Section(columns, tuple(rows))


def layers_document(r: BenchRow, p: PerLayer, *, top: int) -> Document:
    """One row's per-layer table (``top``: the slowest layers only) and its notes."""
    shown = top_layers(p, top)
    unit, scale = flops_unit([x for layer in p.layers for x in (layer.fwd_tflops, layer.bwd_tflops)])
    what = f"top {len(shown)} of {len(p.layers)} layers" if top else f"{len(p.layers)} layers"
    train = p.hooked_bwd_ms is not None
    ceiling = r.ceiling_tflops
    roof = any(layer.flops is not None for layer in p.layers)
    columns = [Column("layer", shorten=20, code=True), Column("type", drop=LAYERS_DROP["type"]),
               _number("MACs", LAYERS_DROP["MACs"]), _number("fwd ms"),
               _number(f"fwd {unit}", LAYERS_DROP["fwd rate"])]
    if train:
        columns += [_number("bwd ms"), _number(f"bwd {unit}", LAYERS_DROP["bwd rate"])]
    if ceiling:
        columns.append(_number("of ceiling", LAYERS_DROP["of ceiling"]))
    if roof:
        columns += [_number(c, LAYERS_DROP.get(c, 0)) for c in ("FLOP/byte", "fwd GB/s", "bound")]
    columns.append(_number("% time"))
    total = p.sum_fwd_ms + (p.sum_bwd_ms or 0.0)
    rows = []
    for layer in shown:
        cells = [layer.name, layer.type, human(layer.macs) if layer.macs else "-",
                 ms(layer.fwd_ms), tflops(layer.fwd_tflops, scale)]
        if train:
            cells += [ms(layer.bwd_ms), tflops(layer.bwd_tflops, scale)]
        if ceiling:
            cells.append(percent(_layer_fraction(layer, ceiling)))
        if roof:
            cells += [intensity(layer.arithmetic_intensity), gbs(layer.achieved_bandwidth),
                      layer.bound or "-"]
        t = layer.fwd_ms + (layer.bwd_ms or 0.0)
        cells.append(percent(t / total) if total else "-")
        rows.append(row(*cells))
    name = f"per layer: {r.model} b{r.batch} {r.dtype} {r.mode}"
    section = Section(tuple(columns), tuple(rows), title=f"{name} ({what})")
    return Document(name, (section,), tuple(per_layer_lines(p)),
                    heading=4)


def _layer_fraction(layer: LayerTiming, ceiling: float) -> float | None:
    """The layer's whole (forward + backward) matmul-equivalent rate over the ceiling."""
    if not layer.macs:
        return None
    t = layer.fwd_ms + (layer.bwd_ms or 0.0)
    flops = 2 * layer.macs * (3 if layer.bwd_ms else 1)
    return flops / (t * 1e-3) / 1e12 / ceiling if t > 0 else None


# ----------------------------------------------------------------------------- files


def csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (tuple, list)):
        return shape(v)
    return v


@results.document.register(BenchResult)
def document(result: BenchResult, *, top: int = 0, layers_csv: bool = False,
             more: Sequence[str] = ()) -> Document:
    """A sweep as a ``Document``: its table (Markdown's model names in backticks), then the
    footer (``more``: lines to end it with) and a part per row timed layer by layer (``top``:
    only the slowest layers); CSV one line per row (failed rows keep their status and error,
    no timings), or with ``layers_csv`` one line per timed layer; JSON the result's exact
    data. A DDP or sharded sweep (``DdpResult``, ``ShardedResult``) is ``ddp_render``'s."""
    exact = layers_section(result) if layers_csv else rows_section(result)
    return Document(title(result), (rows_table(result), exact),
                    (*footer_lines(result), *more), data=result.to_dict(), heading=3,
                    explained=METHOD, brief=BRIEF,
                    parts=tuple(layers_document(r, r.per_layer, top=top)
                                for r in result.rows if r.per_layer is not None))


def rows_section(result: BenchResult, more: Sequence[str] = (),
                 more_values: Callable[[BenchRow], list[Any]] | None = None) -> Section:
    """A CSV-only section: one row per bench row, the exact values of ``CSV_COLUMNS``,
    then of the columns ``more`` (their values from ``more_values``: the DDP figures)."""
    rows = []
    for r in result.rows:
        d = r.to_dict()
        values = [shape(r.input_size) if c == "input_size" else
                  "; ".join(r.unstable_causes) if c == "unstable_causes" else csv_value(d.get(c))
                  for c in CSV_COLUMNS]
        if more_values is not None:
            values += more_values(r)
        rows.append(Row(tuple(cell("", v) for v in values)))
    return Section(tuple(Column(c, csv=c, shown=False) for c in CSV_COLUMNS + tuple(more)),
                   tuple(rows))


def layers_section(result: BenchResult) -> Section:
    """A CSV-only section: the per-layer timings of every row that has them."""
    rows = []
    for r in result.rows:
        if r.per_layer is None:
            continue
        for layer in r.per_layer.layers:
            values = [r.model, r.batch, r.dtype, r.mode, layer.name, layer.type,
                      csv_value(layer.macs), layer.fwd_ms, csv_value(layer.bwd_ms),
                      csv_value(layer.fwd_tflops), csv_value(layer.bwd_tflops), csv_value(layer.flops),
                      csv_value(layer.bytes_moved), csv_value(layer.arithmetic_intensity),
                      csv_value(layer.achieved_flops), csv_value(layer.achieved_bandwidth),
                      csv_value(layer.bound)]
            rows.append(Row(tuple(cell("", v) for v in values)))
    return Section(tuple(Column(c, csv=c, shown=False) for c in LAYER_CSV_COLUMNS), tuple(rows))
