"""``cnnscope rf MODEL``: receptive field, effective stride and padding of every layer."""

from __future__ import annotations

from typing import List, Optional

import typer

from cnnscope.cli.common import (
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

ORDER = 30


def rf(
    model: str = typer.Argument(..., help="Zoo name (see 'cnnscope zoo') or model spec."),
    input: Optional[List[str]] = InputsOpt,
    format: Optional[OutputFormat] = FormatOpt,
    output: Optional[str] = OutputOpt,
    wide: bool = WideOpt,
    explain: bool = ExplainOpt,
    plot: Optional[str] = typer.Option(None, "--plot", metavar="FILE.png|svg",
                                       help="Also draw receptive field and effective stride by "
                                            "layer; needs matplotlib."),
    arg: Optional[List[str]] = ArgOpt,
) -> None:
    """Receptive field, effective stride and padding per layer, in input pixels.

    Multi-branch merges are checked for alignment (same stride and centre); the summary
    gives the field of the last spatial feature map before global pooling / flatten / FC.
    """
    with user_errors():
        from cnnscope.api import receptive_fields

        if plot:
            from cnnscope.report.plot import check_plot_target

            check_plot_target(plot, output)  # a bad name or missing matplotlib fails before tracing
        builder_kwargs = parse_args(arg)
        result = receptive_fields(model, parse_sizes(input), **builder_kwargs)
        write_result(result, format, output, wide=wide, explain=explain)
        if plot:
            from cnnscope.report.plot import plot_rf

            plot_rf(result, plot)
            typer.echo(f"wrote {plot}", err=True)

def register(app: typer.Typer) -> None:
    app.command("rf", epilog=examples(
        "cnnscope rf resnet50",
        "cnnscope rf googlenet --format json -o googlenet.rf.json",
        "cnnscope rf vgg16 --plot vgg16.rf.png"))(rf)
