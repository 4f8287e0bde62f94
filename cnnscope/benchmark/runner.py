"""One benchmark row, and a sweep of them.

A row is (model, device, batch, dtype, mode). Its method:

1. Trace the model on the meta device for its MACs, output shapes and layer names:
   nothing is allocated. The tracer is the ``trace`` argument (``cnnscope.api`` passes
   ``analyze``): timing works on the report and never calls up into the API.
2. Build the model with real (seeded, randomly initialised) weights directly on the
   device; ``eval()`` for inference, ``train()`` for training. A fresh model per row,
   so rows do not share optimizer state, BatchNorm statistics or compiled code.
3. Inference step: ``model(x)`` under ``torch.inference_mode()``. Training step:
   ``zero_grad`` (untimed, as in timm), then forward + loss, ``backward()``,
   ``optimizer.step()`` (SGD, momentum 0.9, Nesterov, as timm's benchmark.py uses),
   each phase timed on its own.
4. Warm-up until the timings settle (``stats.SettleRule``), at least ``--warmup``
   iterations: cuDNN autotuning (``cudnn.benchmark``), ``torch.compile`` and CUDA-graph
   capture all happen here, never in the timed part.
5. Timed iterations (``--iters`` N, or as many as fit ``--min-time``): on CUDA, events
   recorded in the stream and one synchronisation at the end; on the CPU, the monotonic
   clock. Peak memory is reset after warm-up and read after the timed iterations.
6. Median, quartiles and p10/p90 of the samples; throughput = batch / median; achieved
   TFLOP/s from the traced MACs (see ``records.FLOP_BASIS``), as a fraction of the
   device's measured matmul ceiling in the same dtype.

Out of memory gives an "oom" row and frees what the row allocated; any other failure an
"error" row. Neither carries a timing. Ctrl-C stops a sweep and keeps the finished rows.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Any, Callable, ContextManager, Iterator, Protocol, Sequence

import torch

import cnnscope.patches as patches
from cnnscope.benchmark.ceiling import matmul_ceiling
from cnnscope.benchmark.env import collect_env, device_name
from cnnscope.benchmark.peak_memory import PeakMemory, free_memory, is_oom
from cnnscope.benchmark.precision import BENCH_PRECISIONS, check_dtype, fp32_math
from cnnscope.benchmark.records import BenchResult, BenchRow, CopyBandwidth, MatmulCeiling
from cnnscope.benchmark.settings import BenchSettings
from cnnscope.benchmark.stability import SPREAD_LIMIT, Watch, causes, default_threads, usable_cpus
from cnnscope.benchmark.stats import summarize, warm_up
from cnnscope.benchmark.timing import Timer, phase_times, timer_for
from cnnscope.benchmark.workload import UnsupportedConfig, Workload, make_loss
from cnnscope.errors import CnnscopeError, InvalidOptionError, first_line
from cnnscope.trace.meta import GC_PAUSED
from cnnscope.trace.sizes import DEFAULT_INPUT

MODES = ("infer", "train")

# (source, input size, batch, train=...) -> its meta-device ModelReport: ``cnnscope.analyze``.
MetaTrace = Callable[..., Any]


class TimedSource(Protocol):
    """What a row needs of a model: ``cnnscope.models.ModelSource``, resolved by
    ``cnnscope.api``. Timing builds through it and never resolves a name itself."""

    name: str
    input_size: tuple[int, ...] | None

    def build(self, device: Any) -> Any: ...

    def contained(self, what: str) -> ContextManager[Any]: ...

# The most timed iterations a --min-time run takes (a tiny model on a GPU would
# otherwise queue tens of thousands of events).
MAX_SAMPLES = 1000


# ----------------------------------------------------------------------------- one row


@contextmanager
def device_scope(device: torch.device, cudnn_benchmark: bool) -> Iterator[None]:
    with _CUDNN_BENCHMARK(cudnn_benchmark), \
            torch.cuda.device(device) if device.type == "cuda" else nullcontext():
        yield


def _set_cudnn_benchmark(value: bool) -> None:
    torch.backends.cudnn.benchmark = value


_CUDNN_BENCHMARK = patches.setting("cudnn-benchmark", lambda: torch.backends.cudnn.benchmark,
                                   _set_cudnn_benchmark)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` (None: left alone), restored afterwards."""
    if n is None:
        yield
        return
    with _THREADS(n):
        yield


_THREADS = patches.setting("torch-threads", torch.get_num_threads, torch.set_num_threads)


@contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector off: a collection (tens of ms with torch loaded) would
    land in one sample. Reference counting still frees each step's tensors."""
    with GC_PAUSED:
        yield


def _spread(timer: Timer, marks: list[list[Any]]) -> float:
    """IQR / median of the whole steps so far (one synchronisation on CUDA)."""
    timer.sync()
    return summarize([timer.elapsed_ms(m[0], m[-1]) for m in marks]).relative_iqr


def _timed_loop(work: Workload, timer: Timer, settings: BenchSettings) -> list[list[Any]]:
    """Timed iterations, no synchronisation inside a stretch: marks are resolved after it.

    ``--iters N``: exactly N. Otherwise adaptive, as ``adaptive_autorange``: at least
    ``min_samples`` and ``min_time``; then, while IQR/median is over ``SPREAD_LIMIT``, more
    samples (the spread checked every tenth of ``min_time``, one synchronisation each)
    until it falls under or ``max_time`` (3 x ``min_time``) has passed.
    """
    marks: list[list[Any]] = []
    budget = settings.max_time if settings.max_time is not None else 3 * settings.min_time
    check_every = settings.min_time / 10
    start = time.perf_counter()
    next_check = start + settings.min_time
    with no_gc():
        while True:
            marks.append(work.step(timer))
            n = len(marks)
            if settings.iters is not None:
                if n >= settings.iters:
                    break
                continue
            if n >= MAX_SAMPLES:
                break
            now = time.perf_counter()
            if n < settings.min_samples or now < next_check:
                continue
            if now - start >= budget or _spread(timer, marks) <= SPREAD_LIMIT:
                break
            next_check = time.perf_counter() + check_every
    timer.sync()
    return marks


def _tflops(flops: float, ms: float | None) -> float | None:
    return flops / (ms * 1e-3) / 1e12 if ms and ms > 0 else None


def _measure(source: TimedSource, size: tuple[int, ...], batch: int, dtype: str, mode: str,
             settings: BenchSettings, device: torch.device, trace: MetaTrace) -> dict[str, Any]:
    train = mode == "train"
    report = trace(source, size, batch, train=train)  # meta device: MACs, shapes, names
    torch.manual_seed(settings.seed)
    model = source.build(device)
    model.train(train)
    x = torch.randn((batch, *size), device=device)
    notes: list[str] = []
    if settings.channels_last:
        # channels_last is a 4-D (NCHW -> NHWC) layout: a 2-D, 3-D or 5-D input stays as
        # it is (torch raises on it), and the model's 4-D weights are converted alone.
        model = model.to(memory_format=torch.channels_last)
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            notes.append(f"--channels-last: the {x.dim()}-D input keeps its layout "
                         "(channels_last is for 4-D tensors)")
    if train and dtype == "fp16":
        notes.append("fp16 training without a GradScaler: no loss scaling in the step "
                     "(timm's --amp adds one: its unscale and inf check are not timed here)")
    work = Workload(model, x, report, dtype, train, settings, device)
    timer = timer_for(device)
    memory = PeakMemory(device)
    if settings.cuda_graphs:
        # A CUDA graph keeps its activations in the graph's private memory pool, allocated
        # at capture (or, with --compile, at inductor's capture in the warm-up): the peak
        # is reset before it, or the row would under-report what it holds.
        memory.reset()
    if work.manual_graph:
        work.capture()
        notes.append("CUDA graph: one replay per step; no forward/backward split")

    def warm_step() -> float:
        marks = work.step(timer)
        timer.sync()
        return timer.elapsed_ms(marks[0], marks[-1])

    warm = warm_up(warm_step, settings.settle_rule)
    if warm.settled is False:
        notes.append(f"warm-up did not settle within {warm.iters} iterations "
                     f"(last windows differ by more than {settings.settle_rule.tolerance:.0%})")
    if not settings.cuda_graphs:
        memory.reset()
    ran_eager = work.ran_eager()
    if ran_eager:
        notes.append("torch.compile compiled no graph: the row ran eager")
    watch = Watch().start()
    marks = _timed_loop(work, timer, settings)
    seen = watch.stop()
    peak = memory.read()
    times = [phase_times(timer, m, work.phases) for m in marks]
    total = summarize([t["total"] for t in times])
    span_ms = timer.elapsed_ms(marks[0][0], marks[-1][-1])
    macs = report.totals.macs
    fields: dict[str, Any] = dict(
        samples=total.n, median_ms=total.median, p10_ms=total.p10, p25_ms=total.p25,
        p75_ms=total.p75, p90_ms=total.p90, mean_ms=total.mean,
        throughput=batch / (total.median * 1e-3),
        throughput_sustained=batch * total.n / (span_ms * 1e-3) if span_ms > 0 else None,
        peak_memory_bytes=peak, peak_memory_kind=memory.kind, macs=macs,
        warmup_iters=warm.iters, warmup_settled=warm.settled,
        spread=round(total.relative_iqr, 4), other_cpu=seen.other_cpu, cpu_steal=seen.steal,
        load_average=seen.load_average, threads=torch.get_num_threads(), ran_eager=ran_eager,
    )
    why = causes(total.relative_iqr, seen)
    fields.update(stable=not why, unstable_causes=why)
    if train:
        # Counted backward (cnnscope.trace.backward); the 2x estimate only if it failed.
        bwd_macs = report.totals.backward_macs
        if bwd_macs is None:
            bwd_macs = 2 * macs
            notes.append("backward not counted on this model: bwd TFLOP/s use 2 x forward MACs")
        fields["backward_macs"] = bwd_macs
        fields["achieved_tflops"] = _tflops(2 * (macs + bwd_macs), total.median)
        if "bwd" in work.phases:
            fwd = summarize([t["fwd"] for t in times])
            bwd = summarize([t["bwd"] for t in times])
            opt = summarize([t["opt"] for t in times])
            fields.update(fwd_median_ms=fwd.median, fwd_iqr_ms=fwd.iqr, bwd_median_ms=bwd.median,
                          bwd_iqr_ms=bwd.iqr, opt_median_ms=opt.median,
                          fwd_tflops=_tflops(2 * macs, fwd.median),
                          bwd_tflops=_tflops(2 * bwd_macs, bwd.median))
    else:
        fields["achieved_tflops"] = _tflops(2 * macs, total.median)
        fields["fwd_median_ms"] = total.median
        fields["fwd_iqr_ms"] = total.iqr
        fields["fwd_tflops"] = fields["achieved_tflops"]
    if report.unsupported:
        ops = ", ".join(op for op, _ in report.unsupported)
        notes.append(f"ops without a cost formula ({ops}): MACs and TFLOP/s are a lower bound")
    if settings.per_layer:
        from cnnscope.benchmark.per_layer import time_layers

        fields["per_layer"] = time_layers(
            work, timer, min(total.n, 100), report,
            clean_fwd_ms=fields.get("fwd_median_ms"), clean_bwd_ms=fields.get("bwd_median_ms"))
    fields["notes"] = tuple(notes)
    return fields


def bench_row(source: TimedSource, batch: int, dtype: str, mode: str,
              settings: BenchSettings, *, ceiling: MatmulCeiling | None = None,
              bandwidth: CopyBandwidth | None = None, trace: MetaTrace) -> BenchRow:
    """Measure one row. Failures become "oom"/"error"/"unsupported" rows without timings;
    KeyboardInterrupt propagates (after the row's memory is freed). With ``ceiling`` and
    ``bandwidth``, per-layer timings get their roofline verdict. ``trace`` gives the row's
    meta-device ``ModelReport`` (``cnnscope.api.bench_row`` passes ``analyze``)."""
    device = settings.check()
    src = source
    size = tuple(settings.input_size or src.input_size or DEFAULT_INPUT)
    check_dtype(dtype, device)
    if mode not in MODES:
        raise InvalidOptionError(f"unknown mode {mode!r}", "use infer or train")
    base = dict(model=src.name, device=str(device), device_name=device_name(device), batch=batch,
                dtype=dtype, mode=mode, input_size=size, channels_last=settings.channels_last,
                compiled=settings.compile, cuda_graphs=settings.cuda_graphs)
    row: BenchRow
    try:
        with src.contained("benchmark"), device_scope(device, settings.cudnn_benchmark), \
                fp32_math(device, dtype), torch_threads(settings.threads):
            fields = _measure(src, size, batch, dtype, mode, settings, device, trace)
    except KeyboardInterrupt:
        raise  # the sweep frees the memory once the traceback is gone
    except UnsupportedConfig as exc:
        row = BenchRow(**base, status="unsupported", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a failed row is reported, the sweep goes on
        if is_oom(exc):
            row = BenchRow(**base, status="oom", error=f"out of memory at batch {batch}")
        elif isinstance(exc, CnnscopeError):
            row = BenchRow(**base, status="error", error=str(exc))
        else:
            row = BenchRow(**base, status="error", error=f"{type(exc).__name__}: {first_line(exc)}")
    else:
        if fields.get("per_layer") is not None and ceiling is not None and bandwidth is not None:
            from cnnscope.benchmark.roofline import apply_roofline

            fields["per_layer"] = apply_roofline(fields["per_layer"], ceiling.tflops * 1e12,
                                                 bandwidth.bytes_per_s)
        row = apply_ceiling(BenchRow(**base, status="ok", **fields), ceiling)
    # The except blocks are over, so no traceback keeps the row's tensors alive now.
    try:
        free_memory(device, failed=not row.ok)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a sticky CUDA error surfaces at the sync
        # The row's own timing is finished and stands; the device may be unusable now,
        # which the next row's failure will say.
        row = replace(row, notes=row.notes + (f"freeing the row's memory failed: "
                                              f"{type(exc).__name__}: {first_line(exc)}",))
    return row


# On a CPU the convolution library (oneDNN) is not the BLAS torch.mm calls, so a row can
# beat the ceiling even when both were measured on an idle machine.
EXCEEDS_NOTE = ("achieved rate exceeds the matmul ceiling, measured again in this run: "
                "the convolution library beats torch.mm's BLAS here, or the machine was loaded")


def apply_ceiling(row: BenchRow, ceiling: MatmulCeiling | None) -> BenchRow:
    """``row`` with its fraction of ``ceiling`` (and the note when it exceeds 100 %)."""
    notes = tuple(n for n in row.notes if n != EXCEEDS_NOTE)
    if ceiling is None or not row.achieved_tflops or not ceiling.tflops:
        return replace(row, notes=notes)
    fraction = row.achieved_tflops / ceiling.tflops
    if fraction > 1.0:
        notes += (EXCEEDS_NOTE,)
    return replace(row, ceiling_tflops=ceiling.tflops, ceiling_fraction=fraction, notes=notes)


# ----------------------------------------------------------------------------- a sweep


@dataclass(frozen=True)
class RowSpec:
    source: TimedSource
    batch: int
    dtype: str
    mode: str

    @property
    def label(self) -> str:
        return f"{self.source.name} b{self.batch} {self.dtype} {self.mode}"


def plan_rows(sources: Sequence[TimedSource], batches: Sequence[int], dtypes: Sequence[str],
              modes: Sequence[str]) -> list[RowSpec]:
    """Rows in sweep order: model, dtype, mode, then batch (ascending, so an OOM ends a run
    of rows that already has the smaller batches)."""
    return [RowSpec(s, b, d, m) for s in sources for d in dtypes for m in modes
            for b in sorted(batches)]


def run_sweep(specs: Sequence[RowSpec], settings: BenchSettings, *,
              on_start: Callable[[int, RowSpec], None] | None = None,
              on_done: Callable[[int, BenchRow], None] | None = None,
              on_progress: Callable[[BenchResult], None] | None = None,
              trace: MetaTrace) -> BenchResult:
    """Measure every row in ``specs``; Ctrl-C returns what finished, marked interrupted.
    ``trace``: as for ``bench_row``. ``on_progress`` gets the result so far after each
    row (the CLI writes it to the -o file, so that a crash keeps the finished rows)."""
    device = settings.check()
    with torch_threads(settings.threads):
        env = collect_env(device, cudnn_benchmark=settings.cudnn_benchmark)
    env["usable_cores"] = len(usable_cpus())
    env["threads"] = settings.threads or env["torch_threads"]
    env["threads_default"] = settings.threads in (None, default_threads())
    env["spread_limit"] = SPREAD_LIMIT
    # What the sweep gathers as it goes; the (frozen) result is built from it at the end.
    rows: list[BenchRow] = []
    ceilings: dict[str, MatmulCeiling] = {}
    remeasured: set[str] = set()  # dtypes whose ceiling a row exceeded: measured again
    bandwidth: CopyBandwidth | None = None
    interrupted = False
    try:
        with torch_threads(settings.threads):
            for i, spec in enumerate(specs):
                if on_start:
                    on_start(i, spec)
                ceiling = None
                if settings.ceiling:
                    ceiling = ceilings.get(spec.dtype)
                    if ceiling is None:
                        ceiling = sweep_ceiling(device, spec.dtype, settings, env, ceilings)
                if settings.per_layer and ceiling is not None and bandwidth is None:
                    bandwidth = _bandwidth(device, settings, env)
                try:
                    row = bench_row(spec.source, spec.batch, spec.dtype, spec.mode, settings,
                                    ceiling=ceiling, bandwidth=bandwidth, trace=trace)
                except CnnscopeError:
                    raise  # a bad option: the same for every row
                except Exception as exc:  # noqa: BLE001 - e.g. a sticky CUDA error
                    row = BenchRow(model=spec.source.name, device=str(device),
                                   device_name=env.get("device_name", ""), batch=spec.batch,
                                   dtype=spec.dtype, mode=spec.mode, status="error",
                                   input_size=tuple(settings.input_size or spec.source.input_size
                                                    or DEFAULT_INPUT),
                                   error=f"{type(exc).__name__}: {first_line(exc)}")
                if (row.ceiling_fraction or 0) > 1.0 and spec.dtype not in remeasured:
                    # Never print more than 100 % of a ceiling without measuring it again:
                    # the cached or earlier figure may come from a loaded moment.
                    remeasured.add(spec.dtype)
                    fresh = sweep_ceiling(device, spec.dtype, settings, env, ceilings, remeasure=True)
                    if fresh is not None:
                        rows = [apply_ceiling(r, fresh) if r.dtype == spec.dtype and r.ok else r
                                for r in rows]
                        row = apply_ceiling(row, fresh)
                rows.append(row)
                if on_done:
                    on_done(i, row)
                if on_progress:
                    on_progress(BenchResult(env=env, settings={**settings.to_dict(),
                                                               "device": str(device)},
                                            rows=tuple(rows), ceilings=dict(ceilings),
                                            bandwidth=bandwidth, planned=len(specs)))
    except KeyboardInterrupt:
        interrupted = True
    if interrupted:
        try:
            free_memory(device)  # outside the except block: the traceback no longer holds tensors
        except Exception:  # noqa: BLE001 - keep the finished rows whatever the device says
            pass
    return BenchResult(env=env, settings={**settings.to_dict(), "device": str(device)},
                       rows=tuple(rows), ceilings=ceilings, bandwidth=bandwidth,
                       interrupted=interrupted, planned=len(specs))


def sweep_ceiling(device: torch.device, dtype: str, settings: BenchSettings, env: dict[str, Any],
             ceilings: dict[str, MatmulCeiling], *, remeasure: bool = False
             ) -> MatmulCeiling | None:
    """The matmul ceiling of ``dtype``, kept in ``ceilings``; or None with the reason in
    ``env``."""
    try:
        with device_scope(device, settings.cudnn_benchmark):
            ceiling = matmul_ceiling(device, dtype,
                                     remeasure=remeasure or settings.remeasure_ceiling)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - no ceiling is no fraction, not a failed sweep
        env.setdefault("ceiling_errors", {})[dtype] = first_line(exc)
        free_memory(device)
        return None
    ceilings[dtype] = ceiling
    return ceiling


def _bandwidth(device: torch.device, settings: BenchSettings,
               env: dict[str, Any]) -> CopyBandwidth | None:
    """The copy bandwidth (the roofline's memory roof), or None with the reason in env."""
    from cnnscope.benchmark.bandwidth import copy_bandwidth

    try:
        return copy_bandwidth(device, remeasure=settings.remeasure_ceiling)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - no bandwidth is no verdict, not a failed sweep
        env["bandwidth_error"] = first_line(exc)
        free_memory(device)
        return None


__all__ = ["BenchSettings", "TimedSource", "RowSpec", "Workload", "bench_row", "plan_rows",
           "run_sweep", "sweep_ceiling", "BENCH_PRECISIONS", "MODES",
           # from workload.py and peak_memory.py (ddp.py and the tests use them from here)
           "PeakMemory", "UnsupportedConfig", "free_memory", "is_oom", "make_loss"]
