"""``cnnscope params|flops|layers|summary MODEL``: the per-layer table and totals."""

from __future__ import annotations

from typing import List, Optional

import typer

from cnnscope.cli.common import (
    BatchOpt,
    DeviceOpt,
    FormatOpt,
    InputsOpt,
    OutputFormat,
    OutputOpt,
    parse_sizes,
    user_errors,
    write_output,
)
from cnnscope.cli.model_args import ArgOpt, parse_args

ORDER = 10


def summary(
    model: str = typer.Argument(..., help="Zoo name (see 'cnnscope zoo') or model spec."),
    input: Optional[List[str]] = InputsOpt,
    batch: int = BatchOpt,
    depth: int = typer.Option(0, "--depth", help="Group rows to module depth N (0: every layer). Totals stay exact."),
    format: OutputFormat = FormatOpt,
    output: Optional[str] = OutputOpt,
    device: str = DeviceOpt,
    counter: str = typer.Option("cnnscope", "--counter", help="cnnscope (default) or fvcore (cross-check; allocates weights on the CPU)."),
    train: bool = typer.Option(False, "--train", help="Trace training-mode behaviour (batch statistics, dropout, aux heads)."),
    arg: Optional[List[str]] = ArgOpt,
    verbose: bool = typer.Option(False, "--verbose", help="Also say how the model was built and where it was traced."),
) -> None:
    """Per-layer params, MACs and FLOPs with exact totals and the counting convention."""
    with user_errors():
        from cnnscope.analysis.aggregate import group_by_depth
        from cnnscope.api import analyze
        from cnnscope.errors import InvalidOptionError
        from cnnscope.report import layers as render

        if counter not in ("cnnscope", "fvcore"):
            raise InvalidOptionError(f"unknown counter {counter!r}", "use cnnscope or fvcore")
        if depth < 0:
            raise InvalidOptionError(f"--depth {depth} is negative", "use 0 (every layer) or more")
        device_arg = None if device == "meta" else device
        report = analyze(model, parse_sizes(input), batch, device=device_arg, counter=counter,
                         train=train, **parse_args(arg))
        if verbose:
            import dataclasses

            report = dataclasses.replace(report, notes=(*report.notes, report.path_note()))
        rows = group_by_depth(report, depth)
        write_output(format, output,
                     rich=lambda con: render.render_rich(report, rows, con),
                     csv=lambda: render.to_csv(report, rows),
                     json=lambda: render.to_json(report, rows),
                     md=lambda: render.to_markdown(report, rows))


def register(app: typer.Typer) -> None:
    app.command("params", help="Per-layer params, MACs and FLOPs (alias of summary).")(summary)
    app.command("flops", help="Per-layer params, MACs and FLOPs (alias of summary).")(summary)
    app.command("layers", help="Per-layer params, MACs and FLOPs (alias of summary).")(summary)
    app.command("summary")(summary)
