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
        from dataclasses import replace

        from cnnscope.analysis import shapes
        from cnnscope.api import analyze, minimum_input
        from cnnscope.errors import InvalidOptionError
        from cnnscope.models import resolve

        if near is not None and near < 1:
            raise InvalidOptionError(f"--near {near} is not positive", "give a side length, e.g. --near 572")
        source = resolve(model, **parse_args(arg))
        size = parse_sizes(input)
        report = analyze(source, size)  # a too-small input is explained by analyze
        result = shapes.output_sizes(report)
        if min:
            smallest, reason = minimum_input(source, report.input_size[0])
            result = replace(result, min_input=smallest, min_reason=reason)
        if near is not None:
            sizes, rule = shapes.valid_sizes_near(source, near, report.input_size[0])
            result = replace(result, near=near, valid_near=sizes, valid_rule=rule)
        write_result(result, format, output, wide=wide, explain=explain)


def register(app: typer.Typer) -> None:
    app.command("shape", epilog=examples(
        "cnnscope shape alexnet",
        "cnnscope shape vgg16 --min",
        "cnnscope shape unet --near 500"))(shape)
