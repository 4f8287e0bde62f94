"""``cnnscope bench [MODEL...]``: forward/backward timing on CUDA or the CPU."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, List, Optional

import typer

from cnnscope.cli.common import (
    ExplainOpt,
    FormatOpt,
    InputOpt,
    OutputFormat,
    OutputOpt,
    WideOpt,
    examples,
    user_errors,
    write_result,
)
from cnnscope.cli.model_args import ArgOpt, parse_model_args
from cnnscope.cli.options import takes

ORDER = 50


RUN, TIMING, GPU, OUT, DIST = "What to run", "How to time", "On a GPU", "Output", "Distributed"


def _in(panel: str, option: Any) -> Any:
    """A shared option (defined once in common.py) shown in one of bench's help panels."""
    option = copy.copy(option)
    option.rich_help_panel = panel
    return option


@dataclass(frozen=True)
class BenchOptions:
    """``cnnscope bench``'s options, in --help order (see ``cli.options.takes``)."""

    models: Optional[List[str]] = typer.Argument(
        None, help="Zoo names or model specs (space or comma separated). None: one model per main family.",
        rich_help_panel=RUN)
    device: Optional[str] = typer.Option(
        None, "--device", "-d", metavar="cpu|cuda[:N]", rich_help_panel=RUN,
        help="cuda, cuda:N or cpu (default: cuda when available, else cpu).")
    batch: str = typer.Option("1", "--batch", "-b", rich_help_panel=RUN,
                              help="Batch sizes, comma separated: 1,32,128.")
    dtype: str = typer.Option("fp32", "--dtype", metavar="fp32|tf32|bf16|fp16", rich_help_panel=RUN,
                              help="fp32, tf32, bf16, fp16 (comma separated). "
                              "fp32 is strict IEEE (TF32 off); bf16/fp16 use autocast.")
    mode: Optional[str] = typer.Option(None, "--mode", "-m", metavar="infer|train", rich_help_panel=RUN,
                                       help="infer, train or infer,train (default: infer; train with --ddp).")
    input: Optional[str] = _in(RUN, InputOpt)
    arg: Optional[List[str]] = _in(RUN, ArgOpt)
    all_models: bool = typer.Option(False, "--all", metavar="", rich_help_panel=RUN,
                                    help="Every model of the zoo (with --shard: spread over the ranks).")
    channels_last: bool = typer.Option(False, "--channels-last", metavar="", rich_help_panel=RUN,
                                       help="NHWC memory layout for model and input (4-D inputs).")
    compile: bool = typer.Option(False, "--compile", metavar="", rich_help_panel=RUN,
                                 help="torch.compile the model (compilation is in the warm-up, not timed).")
    cuda_graphs: bool = typer.Option(False, "--cuda-graphs", metavar="", rich_help_panel=GPU,
                                     help="Capture each step in a CUDA graph and replay it "
                                          "(with --compile: mode reduce-overhead).")
    per_layer: bool = typer.Option(False, "--per-layer", metavar="", rich_help_panel=RUN,
                                   help="Also time every layer's forward/backward (hooks) with its "
                                        "achieved TFLOP/s (--format csv then writes the per-layer rows).")
    seed: int = typer.Option(0, "--seed", rich_help_panel=RUN, help="Seed of the weights and inputs.")
    warmup: int = typer.Option(5, "--warmup", rich_help_panel=TIMING,
                               help="Minimum warm-up iterations; more run until timings settle.")
    max_warmup: int = typer.Option(50, "--max-warmup", rich_help_panel=TIMING,
                                   help="Warm-up stops here even if timings have not settled.")
    iters: Optional[int] = typer.Option(None, "--iters", "-n", rich_help_panel=TIMING,
                                        help="Exactly this many timed iterations (default: adaptive, "
                                             "see --min-time).")
    min_time: Optional[float] = typer.Option(None, "--min-time", rich_help_panel=TIMING,
                                             help="Seconds of timed iterations per row (default 2; at "
                                                  "least 5 iterations); more, up to 3x, while the "
                                                  "spread is over 10%.")
    threads: Optional[int] = typer.Option(None, "--threads", rich_help_panel=TIMING,
                                          help="torch intra-op threads (default: the cores this "
                                               "process may use, its affinity mask).")
    strict: bool = typer.Option(False, "--strict", metavar="", rich_help_panel=TIMING,
                                help="Exit 1 when any row is unstable (loaded machine, CPU steal, "
                                     "spread over 10%): for CI jobs that must not record noise.")
    cudnn_benchmark: bool = typer.Option(True, "--cudnn-benchmark/--no-cudnn-benchmark", metavar="",
                                         rich_help_panel=GPU,
                                         help="Let cuDNN autotune convolutions (in the warm-up).")
    ceiling: bool = typer.Option(True, "--ceiling/--no-ceiling", metavar="", rich_help_panel=TIMING,
                                 help="Measure (or read from the cache) the dense matmul ceiling per dtype.")
    remeasure_ceiling: bool = typer.Option(False, "--remeasure-ceiling", metavar="", rich_help_panel=TIMING,
                                           help="Measure the matmul ceiling again instead of using the cache.")
    format: Optional[OutputFormat] = _in(OUT, FormatOpt)
    output: Optional[str] = _in(OUT, OutputOpt)
    wide: bool = _in(OUT, WideOpt)
    explain: bool = _in(OUT, ExplainOpt)
    top: int = typer.Option(0, "--top", rich_help_panel=OUT,
                            help="With --per-layer: show only the N slowest layers in the table (files keep all).")
    plot: Optional[str] = typer.Option(None, "--plot", metavar="FILE.png|svg", rich_help_panel=OUT,
                                       help="With --per-layer: draw the roofline (one point per layer, "
                                            "the measured roofs as lines); needs matplotlib.")
    progress: bool = typer.Option(True, "--progress/--no-progress", metavar="", rich_help_panel=OUT,
                                  help="Progress bar on stderr.")
    ddp: Optional[int] = typer.Option(None, "--ddp", metavar="N", rich_help_panel=DIST,
                                      help="Time DDP training steps on N local ranks (torch.distributed: "
                                      "gloo on CPU, NCCL on CUDA). Under torchrun the job's ranks are used.")
    shard: bool = typer.Option(False, "--shard", metavar="", rich_help_panel=DIST,
                               help="With --ddp N or torchrun: spread the rows over the ranks "
                               "(one device each, no DDP) and merge them into one report.")
    bucket_mb: Optional[float] = typer.Option(None, "--bucket-mb", rich_help_panel=DIST,
                                              help="DDP bucket_cap_mb (default: DDP's 25 MiB, first bucket 1 MiB).")
    link_gbps: Optional[float] = typer.Option(None, "--link-gbps", rich_help_panel=DIST,
                                              help="Link bandwidth (Gbit/s) of the ring all-reduce "
                                              "prediction (default: the bandwidth measured in the job).")
    link_latency_us: float = typer.Option(0.0, "--link-latency-us", rich_help_panel=DIST,
                                          help="Per-step latency (us) of the prediction.")
    predict_world: str = typer.Option("8,64", "--predict-world", rich_help_panel=DIST,
                                      help="World sizes to predict, comma separated.")
    ddp_port: int = typer.Option(0, "--ddp-port", rich_help_panel=DIST,
                                 help="Rendezvous port of a --ddp launch (0: a free one).")


@takes(BenchOptions)
def bench(o: BenchOptions) -> None:
    """Time forward and backward passes: median, spread, img/s, peak memory, achieved TFLOP/s.
    """
    with user_errors():
        from cnnscope import api
        from cnnscope.benchmark import ddp as ddp_mod
        from cnnscope.cli import bench_args

        _check(o)
        distributed = o.ddp is not None or o.shard or ddp_mod.in_torchrun()
        settings = _settings(o, distributed)
        dev = settings.check()
        batches = bench_args.parse_batches(o.batch)
        dtypes = bench_args.parse_dtypes(o.dtype, dev)
        modes = bench_args.parse_modes(o.mode or ("train" if distributed and not o.shard else "infer"))
        names = api.sweep_models(bench_args.split_specs(o.models) if o.models else None,
                                 o.all_models)
        progress = _Progress(o.progress and not distributed)
        try:
            result = api.bench_sweep(
                names, settings=settings, batches=batches, dtypes=dtypes, modes=modes,
                model_kwargs=parse_model_args(o.arg, names),
                ddp=_ddp_options(o) if distributed else None, **progress.hooks(),
                on_progress=None if distributed else _partial_writer(
                    o.format, o.output, top=o.top, layers_csv=o.per_layer))
        finally:
            progress.close()
        if result is None:
            return  # a rank other than 0 of a torchrun job: rank 0 writes the report
        # --per-layer: the CSV is one line per timed layer
        write_result(result, o.format, o.output, wide=o.wide, explain=o.explain, top=o.top,
                     layers_csv=o.per_layer)
        _finish(o, result)


def _check(o: BenchOptions) -> None:
    """The options that need no device or model, checked before anything."""
    from cnnscope.errors import InvalidOptionError
    from cnnscope.validate import options as check_floats

    check_floats(min_time=o.min_time, bucket_mb=o.bucket_mb, link_gbps=o.link_gbps,
                 link_latency_us=o.link_latency_us)  # finite, in range, before anything
    if o.iters is not None and o.min_time is not None:
        raise InvalidOptionError("--iters and --min-time both given", "use one of them")
    if o.top < 0:
        raise InvalidOptionError(f"--top {o.top} is negative", "use 0 (all layers) or more")
    if o.plot:
        from cnnscope.report.plot import check_plot_target

        if not o.per_layer:
            raise InvalidOptionError("--plot draws the per-layer roofline", "add --per-layer")
        check_plot_target(o.plot, o.output)  # a bad name or missing matplotlib fails before timing


def _settings(o: BenchOptions, distributed: bool):
    """The sweep's ``BenchSettings``; threads: the affinity mask's cores unless distributed
    (each rank then takes its share)."""
    from cnnscope.benchmark import stability
    from cnnscope.benchmark.settings import BenchSettings
    from cnnscope.cli.common import parse_size

    return BenchSettings(
        device=o.device or _default_device(), warmup=o.warmup, max_warmup=o.max_warmup,
        iters=o.iters, min_time=2.0 if o.min_time is None else o.min_time, seed=o.seed,
        channels_last=o.channels_last, compile=o.compile, cuda_graphs=o.cuda_graphs,
        per_layer=o.per_layer, cudnn_benchmark=o.cudnn_benchmark, input_size=parse_size(o.input),
        ceiling=o.ceiling, remeasure_ceiling=o.remeasure_ceiling,
        threads=o.threads if o.threads is not None else (
            None if distributed else stability.default_threads()),
    )


def _ddp_options(o: BenchOptions):
    from cnnscope.benchmark import ddp as ddp_mod

    return ddp_mod.DdpOptions(
        nproc=o.ddp, shard=o.shard, bucket_cap_mb=o.bucket_mb, link_gbps=o.link_gbps,
        latency_us=o.link_latency_us, predict_world=ddp_mod.parse_world_sizes(o.predict_world),
        port=o.ddp_port)


def _finish(o: BenchOptions, result) -> None:
    """The roofline picture, then the exit status: 130 interrupted, 1 a failed row (or an
    unstable one with --strict)."""
    if o.plot and any(r.per_layer is not None for r in result.rows):
        from cnnscope.report.plot import plot_roofline

        plot_roofline(result, o.plot)
        typer.echo(f"wrote {o.plot}", err=True)
    elif o.plot:
        typer.echo(f"cnnscope: no row has per-layer timings: {o.plot} not written", err=True)
    if result.interrupted:
        typer.echo(f"cnnscope: interrupted: {len(result.rows)} of {result.planned} rows measured",
                   err=True)
        raise typer.Exit(130)
    failed = [r for r in result.rows if r.status == "error"]
    if failed:
        typer.echo(f"cnnscope: {len(failed)} row(s) failed: {failed[0].error}", err=True)
        raise typer.Exit(1)
    unstable = [r for r in result.rows if r.ok and r.stable is False]
    if o.strict and unstable:
        r = unstable[0]
        typer.echo(f"cnnscope: {len(unstable)} row(s) unstable (--strict): {r.model} b{r.batch} "
                   f"{r.dtype} {r.mode}: {'; '.join(r.unstable_causes)}", err=True)
        raise typer.Exit(1)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _partial_writer(format, output, **options):
    """For a JSON or CSV -o file: write the rows so far after each one, so that a crash (a
    sticky CUDA error, a killed job) keeps what finished. None otherwise."""
    import os
    import stat

    from cnnscope.cli.common import resolve_format

    if not output or resolve_format(format, output) not in (OutputFormat.json, OutputFormat.csv):
        return None
    try:
        if not stat.S_ISREG(os.stat(output).st_mode):
            return None  # /dev/stdout, a FIFO, a device: written once, at the end
    except FileNotFoundError:
        pass
    except OSError:
        return None  # the final write reports the problem
    # Quiet: "wrote FILE" is said once, by the final write.
    return lambda partial: write_result(partial, format, output, quiet=True, **options)


class _Progress:
    """The progress bar on stderr (when asked for and stderr is a terminal), started once
    the sweep knows how many rows it has; a failed row is printed above it."""

    def __init__(self, show: bool):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.show = show and self.console.is_terminal
        self.bar: Any = None

    def hooks(self) -> dict[str, Any]:
        return dict(on_plan=self.plan, on_start=self.start, on_done=self.done) if self.show else {}

    def plan(self, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), console=self.console,
                            transient=True)
        self.bar.start()
        self.task = self.bar.add_task("bench", total=total)

    def start(self, i: int, spec: Any) -> None:
        self.bar.update(self.task, description=spec.label)

    def done(self, i: int, row: Any) -> None:
        self.bar.advance(self.task)
        if row.status != "ok":
            self.bar.console.print(f"{row.model} b{row.batch} {row.dtype} {row.mode}: "
                                   f"{row.status} ({row.error})", highlight=False, markup=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def register(app: typer.Typer) -> None:
    app.command("bench", epilog=examples(
        "cnnscope bench resnet18 --device cpu",
        "cnnscope bench resnet50 --device cuda --batch 1,32,128 --dtype fp32,bf16 --mode infer,train",
        "cnnscope bench densenet121 --device cpu --per-layer --top 10",
        "cnnscope bench vgg16 mobilenet_v2 --device cpu -o bench.json",
        "cnnscope bench resnet50 --ddp 8 --device cuda --batch 64 --link-gbps 100"))(bench)
