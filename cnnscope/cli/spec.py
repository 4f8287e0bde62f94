"""``cnnscope spec MODEL``: a paper's spec table recomputed from the traced model."""

from __future__ import annotations

from dataclasses import dataclass
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
from cnnscope.cli.options import takes

ORDER = 40


@dataclass(frozen=True)
class SpecOptions:
    """``cnnscope spec``'s options, in --help order (see ``cli.options.takes``)."""

    model: Optional[str] = typer.Argument(
        None, help="Table (googlenet, resnet, densenet, vgg, mobilenet_v2) or a zoo model "
                   "of those families (resnet50 -> resnet).")
    all_tables: bool = typer.Option(False, "--all", metavar="", help="Every spec table. With -o DIR: write "
                                    "DIR/<table>.csv and DIR/<table>.md (the committed reports).")
    format: Optional[OutputFormat] = FormatOpt
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Write to this file (a folder with --all).")
    wide: bool = WideOpt


@takes(SpecOptions)
def spec(o: SpecOptions) -> None:
    """Paper spec tables (GoogLeNet, ResNet, DenseNet, VGG, MobileNetV2) from the traced models.

    The paper's printed values stand beside the computed ones, and differences are explained.
    """
    with user_errors():
        from cnnscope.analysis import spec as specs
        from cnnscope.api import spec_table, traced_zoo_model
        from cnnscope.errors import InvalidOptionError

        if o.all_tables and o.model:
            raise InvalidOptionError("give a MODEL or --all, not both",
                                     "tables: " + ", ".join(specs.table_names()))
        if not o.all_tables and not o.model:
            raise InvalidOptionError("missing MODEL", "give a table (" +
                                     ", ".join(specs.table_names()) + ") or --all")
        if o.all_tables and o.output:
            from pathlib import Path

            from cnnscope.cli.spec_reports import write_reports
            from cnnscope.errors import UserFileError

            if Path(o.output).exists() and not Path(o.output).is_dir():
                raise UserFileError(f"{o.output!r} is a file", "with --all, -o names a folder")
            for path in write_reports(o.output):
                typer.echo(f"wrote {path}", err=True)
            return
        names = specs.table_names() if o.all_tables else [specs.resolve_table(o.model, traced_zoo_model)]
        tables = [spec_table(n) for n in names]
        from cnnscope.analysis.spec.common import SpecTables

        result = tables[0] if len(tables) == 1 else SpecTables(tuple(tables))
        write_result(result, o.format, o.output, wide=o.wide)


def register(app: typer.Typer) -> None:
    app.command("spec", epilog=examples(
        "cnnscope spec googlenet",
        "cnnscope spec resnet --format md",
        "cnnscope spec --all -o reports/spec"))(spec)
