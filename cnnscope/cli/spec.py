"""``cnnscope spec MODEL``: a paper's spec table recomputed from the traced model."""

from __future__ import annotations

from typing import Optional

import typer

from cnnscope.cli.common import (
    FormatOpt,
    OutputFormat,
    WideOpt,
    examples,
    user_errors,
    write_result,
)

ORDER = 40


def spec(
    model: Optional[str] = typer.Argument(
        None, help="Table (googlenet, resnet, densenet, vgg, mobilenet_v2) or a zoo model "
                   "of those families (resnet50 -> resnet)."),
    all_tables: bool = typer.Option(False, "--all", metavar="", help="Every spec table. With -o DIR: write "
                                    "DIR/<table>.csv and DIR/<table>.md (the committed reports)."),
    format: Optional[OutputFormat] = FormatOpt,
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Write to this file (a folder with --all)."),
    wide: bool = WideOpt,
) -> None:
    """Paper spec tables (GoogLeNet, ResNet, DenseNet, VGG, MobileNetV2) from the traced models.

    The paper's printed values stand beside the computed ones, and differences are explained.
    """
    with user_errors():
        from cnnscope.analysis import spec as specs
        from cnnscope.api import spec_table
        from cnnscope.errors import InvalidOptionError

        if all_tables and model:
            raise InvalidOptionError("give a MODEL or --all, not both",
                                     "tables: " + ", ".join(specs.table_names()))
        if not all_tables and not model:
            raise InvalidOptionError("missing MODEL", "give a table (" +
                                     ", ".join(specs.table_names()) + ") or --all")
        if all_tables and output:
            from pathlib import Path

            from cnnscope.cli.spec_reports import write_reports
            from cnnscope.errors import UserFileError

            if Path(output).exists() and not Path(output).is_dir():
                raise UserFileError(f"{output!r} is a file", "with --all, -o names a folder")
            for path in write_reports(output):
                typer.echo(f"wrote {path}", err=True)
            return
        names = specs.table_names() if all_tables else [specs.resolve_table(model)]
        tables = [spec_table(n) for n in names]
        from cnnscope.analysis.spec.common import SpecTables

        result = tables[0] if len(tables) == 1 else SpecTables(tuple(tables))
        write_result(result, format, output, wide=wide)


def register(app: typer.Typer) -> None:
    app.command("spec", epilog=examples(
        "cnnscope spec googlenet",
        "cnnscope spec resnet --format md",
        "cnnscope spec --all -o reports/spec"))(spec)
