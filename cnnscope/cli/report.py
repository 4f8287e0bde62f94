"""``cnnscope report MODEL... -o DIR``: layer tables, totals, summaries and the comparison."""

from __future__ import annotations

from typing import List, Optional

import typer

from cnnscope.cli.common import BatchOpt, InputOpt, examples, parse_size, user_errors
from cnnscope.cli.compare import DtypeOpt
from cnnscope.cli.model_args import ArgOpt, parse_model_args

ORDER = 30


def report(
    models: List[str] = typer.Argument(..., help="Models (zoo names or specs)."),
    output: str = typer.Option(..., "--output", "-o", help="Folder to write into (created if missing)."),
    input: Optional[str] = InputOpt,
    batch: int = BatchOpt,
    dtype: str = DtypeOpt,
    depth: int = typer.Option(1, "--depth",
                              help="Module depth of the Markdown layer table (0: every layer)."),
    plot: bool = typer.Option(False, "--plot", metavar="", help="Also draw compare.png (needs matplotlib)."),
    arg: Optional[List[str]] = ArgOpt,
) -> None:
    """Write layer tables (CSV), totals (JSON), Markdown summaries and the comparison to a folder.

    Per model: <model>.layers.csv, <model>.totals.json, <model>.md; with two or more
    models also compare.csv, compare.json, compare.md. Every file is written atomically.
    """
    with user_errors():
        from cnnscope.api import report_folder
        from cnnscope.api.folder_contents import check_report_options
        from cnnscope.report.files import write_report

        check_report_options(depth, dtype)
        size = parse_size(input)
        if plot and len(models) > 1:
            from cnnscope.report.plot import require_matplotlib

            require_matplotlib()  # before any tracing
        folder = report_folder(models, size, batch, dtype=dtype, depth=depth,
                               model_kwargs=parse_model_args(arg, models))
        written = write_report(output, folder.reports, folder.comparison, folder.rows, plot=plot)
        for path in written:
            typer.echo(f"wrote {path}", err=True)

def register(app: typer.Typer) -> None:
    app.command("report", epilog=examples(
        "cnnscope report resnet50 -o out/",
        "cnnscope report vgg16 googlenet resnet50 -o out/ --plot"))(report)
