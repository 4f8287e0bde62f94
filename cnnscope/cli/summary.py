"""``cnnscope params|flops|layers|summary MODEL``: the per-layer table and totals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import typer

from cnnscope.cli.common import (
    BatchOpt,
    Counter,
    Detections,
    DeviceOpt,
    ExplainOpt,
    FormatOpt,
    InputsOpt,
    OutputFormat,
    OutputOpt,
    WideOpt,
    examples,
    parse_sizes,
    user_errors,
    write_result,
)
from cnnscope.cli.model_args import ArgOpt, parse_args
from cnnscope.cli.options import takes

ORDER = 10


@dataclass(frozen=True)
class SummaryOptions:
    """``cnnscope summary``'s options, in --help order (see ``cli.options.takes``)."""

    model: str = typer.Argument(..., help="Zoo name (see 'cnnscope zoo') or model spec.")
    input: Optional[List[str]] = InputsOpt
    batch: int = BatchOpt
    depth: int = typer.Option(0, "--depth", help="Group rows to module depth N (0: every layer). Totals stay exact.")
    format: Optional[OutputFormat] = FormatOpt
    output: Optional[str] = OutputOpt
    wide: bool = WideOpt
    explain: bool = ExplainOpt
    device: str = DeviceOpt
    counter: Counter = typer.Option(Counter.cnnscope, "--counter", case_sensitive=False,
                                    help="cnnscope, or fvcore: both counts side by side per layer, "
                                         "with the difference and its cause (allocates weights on "
                                         "the CPU).")
    train: bool = typer.Option(False, "--train", metavar="",
                               help="Trace training-mode behaviour (batch statistics, dropout, aux "
                                    "heads) and count the backward pass per layer (fwd/bwd columns).")
    freeze: Optional[List[str]] = typer.Option(None, "--freeze", metavar="MODULE", help="Freeze the parameters under this module prefix (repeatable; with --train: no weight gradients there).")
    plot: Optional[str] = typer.Option(None, "--plot", metavar="FILE.png|svg",
                                       help="Also draw params and MACs per layer (per module with "
                                            "--depth) as bars; needs matplotlib.")
    detections: Detections = typer.Option(Detections.caps, "--detections", case_sensitive=False,
                                   help="Detection models: count at the configured caps "
                                        "(proposals and detections kept, whatever the weights) "
                                        "or what the random weights keep (data).")
    arg: Optional[List[str]] = ArgOpt
    verbose: bool = typer.Option(False, "--verbose", metavar="", help="Also say how the model was built and where it was traced.")


@takes(SummaryOptions)
def summary(o: SummaryOptions) -> None:
    """Per-layer params, MACs and FLOPs with exact totals and the counting convention."""
    with user_errors():
        from cnnscope.analysis.aggregate import group_by_depth
        from cnnscope.api import analyze
        from cnnscope.errors import InvalidOptionError

        if o.depth < 0:
            raise InvalidOptionError(f"--depth {o.depth} is negative", "use 0 (every layer) or more")
        if o.plot:
            from cnnscope.report.plot import check_plot_target

            check_plot_target(o.plot, o.output)  # a bad name or missing matplotlib fails before tracing
        if o.counter == "fvcore":
            _fvcore_side_by_side(o.model, o.input, o.batch, o.depth, o.format, o.output, o.wide, o.train,
                                 o.plot, o.arg, o.explain)
            return
        device_arg = None if o.device == "meta" else o.device
        report = analyze(o.model, parse_sizes(o.input), o.batch, device=device_arg, train=o.train,
                         freeze=tuple(o.freeze or ()), detections=o.detections.value,
                         **parse_args(o.arg))
        if o.verbose:
            import dataclasses

            report = dataclasses.replace(report, notes=(*report.notes, report.path_note()))
        rows = group_by_depth(report, o.depth)
        write_result(report, o.format, o.output, wide=o.wide, explain=o.explain, rows=rows)
        if o.plot:
            from cnnscope.report.plot import plot_layers

            plot_layers(report, rows, o.plot)
            typer.echo(f"wrote {o.plot}", err=True)


def _fvcore_side_by_side(model, input, batch, depth, format, output, wide, train, plot, arg,
                         explain=False):
    """``--counter fvcore``: both counts per layer, the difference and its cause."""
    from cnnscope.api import fvcore_check
    from cnnscope.errors import InvalidOptionError

    if plot:
        raise InvalidOptionError("--plot draws cnnscope's counts", "drop --counter fvcore")
    check = fvcore_check(model, parse_sizes(input), batch, depth=depth, train=train,
                         **parse_args(arg))
    write_result(check, format, output, wide=wide, explain=explain)


def register(app: typer.Typer) -> None:
    epilog = examples("cnnscope params resnet50",
                      "cnnscope params resnet50 --depth 1",
                      "cnnscope flops vgg16 --input 3x512x512 --batch 8 -o vgg16.csv",
                      "cnnscope params net.py:build --arg width=32 --format json",
                      "cnnscope params resnet18 --counter fvcore")
    alias = "Per-layer params, MACs and FLOPs (alias of summary)."
    app.command("params", help=alias, epilog=epilog)(summary)
    app.command("flops", help=alias, epilog=epilog)(summary)
    app.command("layers", help=alias, epilog=epilog)(summary)
    app.command("summary", epilog=epilog)(summary)
