"""``cnnscope zoo [PATTERN] [--family F]``: the models, with their papers and sizes."""

from __future__ import annotations

from typing import Optional

import typer

from cnnscope.cli.common import (
    ExplainOpt,
    FormatOpt,
    OutputFormat,
    OutputOpt,
    WideOpt,
    examples,
    user_errors,
    write_result,
)

ORDER = 0


def zoo(
    pattern: str = typer.Argument("*", help="Glob over model names, e.g. 'resnet*'."),
    family: Optional[str] = typer.Option(None, "--family", help="Only this family (e.g. ResNet)."),
    format: Optional[OutputFormat] = FormatOpt,
    output: Optional[str] = OutputOpt,
    wide: bool = WideOpt,
    explain: bool = ExplainOpt,
    counts: bool = typer.Option(True, "--counts/--no-counts", metavar="", help="Trace each model (meta device) for params and MACs."),
) -> None:
    """List the zoo: name, family, paper year, data set, default input, params, MACs."""
    with user_errors():
        from cnnscope.api import zoo_table
        from cnnscope.errors import UnknownModelError

        table = zoo_table(pattern, family, counts=counts)
        if not table.rows:
            from cnnscope.zoo import families

            raise UnknownModelError(
                f"no model matches {pattern!r}" + (f" in family {family!r}" if family else ""),
                "families: " + ", ".join(families()),
            )
        write_result(table, format, output, wide=wide, explain=explain)


def register(app: typer.Typer) -> None:
    app.command("zoo", epilog=examples(
        "cnnscope zoo",
        "cnnscope zoo 'resnet*'",
        "cnnscope zoo --family DenseNet --format csv"))(zoo)
