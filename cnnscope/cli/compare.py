"""``cnnscope compare MODEL MODEL [MORE...]``: models side by side, ratios to the first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import typer

from cnnscope.cli.common import (
    BatchOpt,
    ExplainOpt,
    FormatOpt,
    InputOpt,
    OutputFormat,
    OutputOpt,
    WideOpt,
    examples,
    parse_size,
    user_errors,
    write_result,
)
from cnnscope.cli.model_args import ArgOpt, parse_model_args
from cnnscope.cli.options import takes

ORDER = 20

DtypeOpt = typer.Option("float32", "--dtype", metavar="float32|float16|bfloat16|int8|...",
                        help="Element type for byte figures: float32, float16, bfloat16, int8...")


@dataclass(frozen=True)
class CompareOptions:
    """``cnnscope compare``'s options, in --help order (see ``cli.options.takes``)."""

    models: List[str] = typer.Argument(..., help="Two or more models (zoo names or specs); "
                                                 "the first is the reference.")
    input: Optional[str] = InputOpt
    batch: int = BatchOpt
    dtype: str = DtypeOpt
    bench: bool = typer.Option(False, "--bench", metavar="", help="Also measure latency and throughput.")
    device: Optional[str] = typer.Option(None, "--device", "-d", metavar="cpu|cuda[:N]",
                                         help="Device for --bench (default: cuda if available, else cpu).")
    format: Optional[OutputFormat] = FormatOpt
    output: Optional[str] = OutputOpt
    wide: bool = WideOpt
    explain: bool = ExplainOpt
    plot: Optional[str] = typer.Option(None, "--plot", metavar="FILE.png|svg",
                                       help="Draw params vs MACs (bubble = peak activations); "
                                            "needs matplotlib (pip install 'cnnscope[plot]').")
    arg: Optional[List[str]] = ArgOpt


@takes(CompareOptions)
def compare(o: CompareOptions) -> None:
    """Params (and bytes), MACs, FLOPs, depth, receptive field, peak activation memory."""
    with user_errors():
        from cnnscope.analysis.compare import dtype_bytes
        from cnnscope.api import compare as run_compare
        from cnnscope.api import resolve_all

        if len(o.models) < 2:
            from cnnscope.errors import InvalidOptionError

            raise InvalidOptionError(
                f"compare needs two or more models, got one ({o.models[0]})",
                f"name another to compare with, or see one model with: cnnscope params {o.models[0]}")
        kwargs = parse_model_args(o.arg, o.models)
        dtype_bytes(o.dtype)
        size = parse_size(o.input)
        if o.plot:
            from cnnscope.report.plot import check_plot_target

            check_plot_target(o.plot, o.output)  # a missing matplotlib fails before any tracing
        sources = resolve_all(o.models, kwargs)  # an unknown name fails before any work
        result = run_compare(sources, size, o.batch, dtype=o.dtype, bench=o.bench, device=o.device)
        write_result(result, o.format, o.output, wide=o.wide, explain=o.explain)
        if o.plot:
            from cnnscope.report.plot import plot_comparison

            plot_comparison(result, o.plot)
            typer.echo(f"wrote {o.plot}", err=True)


def register(app: typer.Typer) -> None:
    app.command("compare", epilog=examples(
        "cnnscope compare vgg16 googlenet",
        "cnnscope compare resnet50 densenet121 mobilenet_v2 --dtype float16",
        "cnnscope compare resnet18 resnet50 --bench --device cpu",
        "cnnscope compare vgg16 resnet50 -o compare.md"))(compare)
