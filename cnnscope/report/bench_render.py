"""What ``cnnscope bench`` shows (a ``BenchResult``) as a ``Document``. No torch.

CSV and JSON go through the Document renderers; the table (Rich's own, a per-layer table
after each row) and Markdown are still printed by this module's ``render_rich`` and
``to_markdown`` (kept as the document's ``own`` formats: byte for byte what they were).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from cnnscope.bench.records import (
    FLOP_BASIS,
    BenchResult,
    BenchRow,
    LayerTiming,
    PerLayer,
)
from cnnscope.bench.roofline import (
    ROOFLINE_BASIS,
    most_time_for_least_work,
    ridge_point,
)
from cnnscope.report.document import Column, Document, Row, Section, cell
from cnnscope.report.units import bytes_h, human, shape

CSV_COLUMNS = (
    "model", "device", "device_name", "batch", "dtype", "mode", "status", "error", "samples",
    "median_ms", "p10_ms", "p25_ms", "p75_ms", "p90_ms", "iqr_ms", "mean_ms",
    "fwd_median_ms", "fwd_iqr_ms", "bwd_median_ms", "bwd_iqr_ms", "opt_median_ms",
    "throughput", "throughput_sustained", "peak_memory_bytes", "peak_memory_kind", "macs",
    "achieved_tflops", "fwd_tflops", "bwd_tflops", "ceiling_tflops", "ceiling_fraction",
    "warmup_iters", "warmup_settled", "channels_last", "compiled", "cuda_graphs", "input_size",
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


def _status(r: BenchRow) -> str:
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
        parts += [f"{env.get('torch_threads')} torch threads"]
        if env.get("load_average"):
            parts.append("load average " + " ".join(str(x) for x in env["load_average"]))
    return ", ".join(parts)


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
    lines.append("median over the timed iterations after warm-up; IQR = p75 - p25. "
                 "train: step = forward + loss + backward + optimizer step (SGD).")
    lines.append(FLOP_BASIS)
    for r in result.rows:
        for note in r.notes:
            lines.append(f"* {r.model} b{r.batch} {r.dtype} {r.mode}: {note}")
    if result.interrupted:
        lines.append(f"INTERRUPTED: {len(result.rows)} of {result.planned} rows measured.")
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


# ----------------------------------------------------------------------------- rich


def render_rich(result: BenchResult, console, *, top: int = 0, more: Sequence[str] = ()) -> None:
    """Print the results table, then one per-layer table per row that has one."""
    from rich.table import Table

    unit, scale = flops_unit(r.achieved_tflops for r in result.rows)
    table = Table(title=title(result), header_style="bold")
    table.add_column("model", no_wrap=True, min_width=8)
    for col in ("batch", "dtype", "mode"):
        table.add_column(col, no_wrap=True, justify="right" if col == "batch" else "left")
    # Numbers are never cut: numeric columns do not wrap and take the width they need.
    for col in ("median ms", "IQR ms", "n", "fwd ms", "bwd ms", "img/s", "peak memory",
                unit, "of ceiling"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("status", overflow="fold", min_width=6)
    for r in result.rows:
        if r.ok:
            fwd = ms(r.fwd_median_ms) if r.mode == "train" else "-"
            table.add_row(r.model, str(r.batch), r.dtype, r.mode, ms(r.median_ms), ms(r.iqr_ms),
                          str(r.samples), fwd, ms(r.bwd_median_ms), rate(r.throughput),
                          bytes_h(r.peak_memory_bytes), tflops(r.achieved_tflops, scale),
                          percent(r.ceiling_fraction), _status(r))
        else:
            style = "yellow" if r.status in ("oom", "unsupported") else "red"
            table.add_row(r.model, str(r.batch), r.dtype, r.mode, *(["-"] * 9),
                          f"[{style}]{_escape(_status(r))}[/]")
    console.print(table)
    for line in footer_lines(result) + list(more):
        console.print(line, highlight=False, markup=False)
    for r in result.rows:
        if r.per_layer is not None:
            _render_layers_rich(r, r.per_layer, console, top=top, ceiling=r.ceiling_tflops)


def _render_layers_rich(r: BenchRow, p: PerLayer, console, *, top: int,
                        ceiling: float | None) -> None:
    from rich.table import Table

    shown = top_layers(p, top)
    unit, scale = flops_unit([x for layer in p.layers for x in (layer.fwd_tflops, layer.bwd_tflops)])
    unit = unit.split("/")[0]  # "GFLOP", column headers say "fwd GFLOP/s"
    what = f"top {len(shown)} of {len(p.layers)} layers" if top else f"{len(p.layers)} layers"
    table = Table(title=f"per layer: {r.model} b{r.batch} {r.dtype} {r.mode} ({what})",
                  header_style="bold")
    table.add_column("layer", overflow="fold", min_width=16)
    table.add_column("type", overflow="fold", min_width=6)
    for col in ("MACs", "fwd ms", f"fwd {unit}/s"):
        table.add_column(col, justify="right", no_wrap=True)
    train = p.hooked_bwd_ms is not None
    if train:
        for col in ("bwd ms", f"bwd {unit}/s"):
            table.add_column(col, justify="right", no_wrap=True)
    if ceiling:
        table.add_column("of ceiling", justify="right", no_wrap=True)
    roof = any(layer.flops is not None for layer in p.layers)
    if roof:
        for col in ("FLOP/byte", "fwd GB/s", "bound"):
            table.add_column(col, justify="right", no_wrap=True)
    table.add_column("% time", justify="right", no_wrap=True)
    total = p.sum_fwd_ms + (p.sum_bwd_ms or 0.0)
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
        table.add_row(*cells)
    console.print(table)
    for line in per_layer_lines(p):
        console.print(line, highlight=False, markup=False)


def _layer_fraction(layer: LayerTiming, ceiling: float) -> float | None:
    """The layer's whole (forward + backward) matmul-equivalent rate over the ceiling."""
    if not layer.macs:
        return None
    t = layer.fwd_ms + (layer.bwd_ms or 0.0)
    flops = 2 * layer.macs * (3 if layer.bwd_ms else 1)
    return flops / (t * 1e-3) / 1e12 / ceiling if t > 0 else None


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")  # a bare '|' would end the Markdown cell


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


# ----------------------------------------------------------------------------- files


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (tuple, list)):
        return shape(v)
    return v


def document(result: BenchResult, *, top: int = 0, layers_csv: bool = False) -> Document:
    """A sweep as a ``Document``: CSV one line per row (failed rows keep their status and
    error, no timings), or with ``layers_csv`` one line per timed layer; JSON the result's
    exact data. The table (Rich's, with the per-layer tables after each row's footer) and
    Markdown (``top``: only the slowest layers) are still this module's own. A DDP or
    sharded sweep is ``ddp_render``'s."""
    if result.env.get("ddp") or result.env.get("shard"):
        from cnnscope.report import ddp_render  # it builds on this module

        return ddp_render.document(result, top=top, layers_csv=layers_csv)
    section = layers_section(result) if layers_csv else rows_section(result)
    return Document(title(result), (section,), tuple(footer_lines(result)),
                    data=result.to_dict(),
                    own={"table": lambda console, wide: render_rich(result, console, top=top),
                         "md": lambda: to_markdown(result, top=top)})


def rows_section(result: BenchResult, more: Sequence[str] = (),
                 more_values: Callable[[BenchRow], list[Any]] | None = None) -> Section:
    """A CSV-only section: one row per bench row, the exact values of ``CSV_COLUMNS``,
    then of the columns ``more`` (their values from ``more_values``: the DDP figures)."""
    rows = []
    for r in result.rows:
        d = r.to_dict()
        values = [_cell(d.get(c)) if c != "input_size" else shape(r.input_size)
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
                      _cell(layer.macs), layer.fwd_ms, _cell(layer.bwd_ms),
                      _cell(layer.fwd_tflops), _cell(layer.bwd_tflops), _cell(layer.flops),
                      _cell(layer.bytes_moved), _cell(layer.arithmetic_intensity),
                      _cell(layer.achieved_flops), _cell(layer.achieved_bandwidth),
                      _cell(layer.bound)]
            rows.append(Row(tuple(cell("", v) for v in values)))
    return Section(tuple(Column(c, csv=c, shown=False) for c in LAYER_CSV_COLUMNS), tuple(rows))


def to_markdown(result: BenchResult, *, top: int = 0, more: Sequence[str] = ()) -> str:
    unit, scale = flops_unit(r.achieved_tflops for r in result.rows)
    out = [f"### {title(result)}", "",
           "| model | batch | dtype | mode | median ms | IQR ms | n | fwd ms | bwd ms | img/s "
           f"| peak memory | {unit} | of ceiling | status |",
           "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in result.rows:
        if r.ok:
            fwd = ms(r.fwd_median_ms) if r.mode == "train" else "-"
            out.append(f"| `{r.model}` | {r.batch} | {r.dtype} | {r.mode} | {ms(r.median_ms)} | "
                       f"{ms(r.iqr_ms)} | {r.samples} | {fwd} | {ms(r.bwd_median_ms)} | "
                       f"{rate(r.throughput)} | {bytes_h(r.peak_memory_bytes)} | "
                       f"{tflops(r.achieved_tflops, scale)} | {percent(r.ceiling_fraction)} | {_status(r)} |")
        else:
            out.append(f"| `{r.model}` | {r.batch} | {r.dtype} | {r.mode} | - | - | - | - | - | - "
                       f"| - | - | - | {_md_cell(_status(r))} |")
    out.append("")
    out.extend(f"- {line}" for line in footer_lines(result) + list(more))
    for r in result.rows:
        if r.per_layer is not None:
            out.append("")
            out.extend(_layers_markdown(r, r.per_layer, top))
    return "\n".join(out) + "\n"


def _layers_markdown(r: BenchRow, p: PerLayer, top: int) -> Sequence[str]:
    """The per-layer table with the table's columns (``of ceiling`` when the row has a
    ceiling, ``% time`` last)."""
    train = p.hooked_bwd_ms is not None
    unit, scale = flops_unit([x for layer in p.layers for x in (layer.fwd_tflops, layer.bwd_tflops)])
    roof = any(layer.flops is not None for layer in p.layers)
    ceiling = r.ceiling_tflops
    head = (f"| layer | type | MACs | fwd ms | fwd {unit} |"
            + (f" bwd ms | bwd {unit} |" if train else "")
            + (" of ceiling |" if ceiling else "")
            + (" FLOP/byte | fwd GB/s | bound |" if roof else "") + " % time |")
    sep = ("| --- | --- | ---: | ---: | ---: |" + (" ---: | ---: |" if train else "")
           + (" ---: |" if ceiling else "") + (" ---: | ---: | ---: |" if roof else "")
           + " ---: |")
    total = p.sum_fwd_ms + (p.sum_bwd_ms or 0.0)
    lines = [f"#### per layer: {r.model} b{r.batch} {r.dtype} {r.mode}", "", head, sep]
    for layer in top_layers(p, top):
        row = (f"| `{layer.name}` | {layer.type} | {human(layer.macs) if layer.macs else '-'} | "
               f"{ms(layer.fwd_ms)} | {tflops(layer.fwd_tflops, scale)} |")
        if train:
            row += f" {ms(layer.bwd_ms)} | {tflops(layer.bwd_tflops, scale)} |"
        if ceiling:
            row += f" {percent(_layer_fraction(layer, ceiling))} |"
        if roof:
            row += (f" {intensity(layer.arithmetic_intensity)} | "
                    f"{gbs(layer.achieved_bandwidth)} | {layer.bound or '-'} |")
        t = layer.fwd_ms + (layer.bwd_ms or 0.0)
        row += f" {percent(t / total) if total else '-'} |"
        lines.append(row)
    lines.append("")
    lines.extend(f"- {line}" for line in per_layer_lines(p))
    return lines
