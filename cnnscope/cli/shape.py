"""``cnnscope shape MODEL``: every layer's output size with its formula; input limits."""

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

ORDER = 31


def shape(
    model: str = typer.Argument(..., help="Zoo name (see 'cnnscope zoo') or model spec."),
    input: Optional[List[str]] = InputsOpt,
    min: bool = typer.Option(False, "--min", metavar="", help="Also find the smallest square input the network accepts."),
    near: Optional[int] = typer.Option(None, "--near", metavar="N",
                                       help="Valid input sizes near N (U-Net: sizes whose pooled maps "
                                            "are all even; others: sizes the network runs on)."),
    format: Optional[OutputFormat] = FormatOpt,
    output: Optional[str] = OutputOpt,
    wide: bool = WideOpt,
    explain: bool = ExplainOpt,
    arg: Optional[List[str]] = ArgOpt,
) -> None:
    """Per-layer output size with the formula used; --min / --near for input limits.

    An input that is too small fails with the first layer that cannot fit it and why.
    """
    with user_errors():
        from cnnscope.api import output_sizes

        builder_kwargs = parse_args(arg)
        result = output_sizes(model, parse_sizes(input), min=min, near=near, **builder_kwargs)
        write_result(result, format, output, wide=wide, explain=explain)

def register(app: typer.Typer) -> None:
    app.command("shape", epilog=examples(
        "cnnscope shape alexnet",
        "cnnscope shape vgg16 --min",
        "cnnscope shape unet --near 500"))(shape)
