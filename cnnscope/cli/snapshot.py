"""``cnnscope snapshot`` and ``cnnscope check``: the CI regression gate over lock files.

``check`` exits 0 only when every model of the lock file was traced and matches it, 1 with
a table of what changed (model, field, old, new, delta; a model that no longer builds or
traces is such a change), 2 on a usage error (a lock file that is missing, not JSON, not
of the schema, or naming code it may not run; a bad option).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import List, Optional

import typer

from cnnscope.cli.common import (
    BatchOpt,
    InputOpt,
    OutputFormat,
    OutputOpt,
    emit,
    examples,
    parse_size,
    user_errors,
    write_result,
)
from cnnscope.cli.model_args import ArgOpt, parse_model_args
from cnnscope.cli.options import takes

ORDER = 40


class CheckFormat(str, Enum):
    """check's formats: every command's, and GitHub workflow annotations."""

    table = "table"
    csv = "csv"
    json = "json"
    md = "md"
    github = "github"


def snapshot(
    models: Optional[List[str]] = typer.Argument(None, help="Models to record (zoo names or specs)."),
    zoo: bool = typer.Option(False, "--zoo", metavar="", help="Record every zoo model (at its default input)."),
    input: Optional[str] = InputOpt,
    batch: int = BatchOpt,
    output: Optional[str] = OutputOpt,
    arg: Optional[List[str]] = ArgOpt,
) -> None:
    """Record params, MACs, FLOPs, output shapes and per-layer params in a lock file."""
    with user_errors():
        from cnnscope.analysis.snapshot import dump_lock
        from cnnscope.api import make_lock
        from cnnscope.errors import InvalidOptionError

        specs = list(models or [])
        if zoo:
            from cnnscope.zoo import list_models

            specs += [n for n in list_models() if n not in specs]
        if not specs:
            raise InvalidOptionError("no model to snapshot", "name models, or use --zoo")
        from pathlib import Path

        refuse_overwriting_inputs(output, [s.rsplit(":", 1)[0] for s in specs if ":" in s],
                                  "a model file")
        folder = Path(output).parent if output else Path(".")
        lock = make_lock(specs, parse_size(input), batch, parse_model_args(arg, specs),
                         lock_folder=folder)
        emit(dump_lock(lock), output)


@dataclass(frozen=True)
class CheckOptions:
    """``cnnscope check``'s options, in --help order (see ``cli.options.takes``)."""

    lock: str = typer.Argument(..., help="Lock file written by cnnscope snapshot.")
    rtol: Optional[List[str]] = typer.Option(
        None, "--rtol", metavar="[FIELD=]VALUE",
        help="Relative tolerance: '--rtol 0.01' for MACs and FLOPs, or per field "
             "(params, trainable_params, macs, flops). Default: exact.")
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", metavar="SPEC",
                                              help="Check only this model of the lock file (repeatable).")
    allow_module: Optional[List[str]] = typer.Option(
        None, "--allow-module", metavar="PACKAGE",
        help="Let the lock's package.module:factory specs import this package (repeatable). "
             "Without it, check imports no module that the lock alone names.")
    format: Optional[CheckFormat] = typer.Option(
        None, "--format", "-f", case_sensitive=False,
        help="Output format (default: from the -o file name: .json, .csv, .md; else table); "
             "github: a GitHub Actions annotation (::error) per drifted model.")
    output: Optional[str] = OutputOpt


@takes(CheckOptions)
def check(o: CheckOptions) -> None:
    """Re-trace the models of a lock file: exit 0 if all match, 1 if anything drifted."""
    with user_errors():
        from cnnscope.analysis.snapshot import parse_rtol
        from cnnscope.api import check_lock

        refuse_overwriting_inputs(o.output, [o.lock], "the lock file being checked")
        if o.format is CheckFormat.github and o.output:
            from cnnscope.cli.common import resolve_format

            if resolve_format(None, o.output) is not OutputFormat.table:  # -o x.json
                from cnnscope.errors import InvalidOptionError

                raise InvalidOptionError(
                    f"-o {o.output} names a {resolve_format(None, o.output).value} file but "
                    "--format is github", "name the file .txt, or drop -o")

        result = check_lock(o.lock, parse_rtol(o.rtol), o.model or None,
                            allow_modules=tuple(o.allow_module or ()))
        if o.format is CheckFormat.github:
            from cnnscope.report.files import github_annotations

            emit(github_annotations(result), o.output)
        else:
            write_result(result, None if o.format is None else OutputFormat(o.format.value), o.output)
    if not result.ok:
        raise typer.Exit(1)


def refuse_overwriting_inputs(output: Optional[str], inputs: List[str], what: str) -> None:
    """``-o`` may not name a file the command reads: the report would replace it."""
    from cnnscope.errors import InvalidOptionError
    from cnnscope.fileio import same_file

    if output and any(same_file(output, path) for path in inputs):
        raise InvalidOptionError(f"-o {output!r} names {what}", "write the output elsewhere")


def register(app: typer.Typer) -> None:
    app.command("snapshot", epilog=examples(
        "cnnscope snapshot resnet18 net.py:build -o cnnscope.lock.json",
        "cnnscope snapshot --zoo -o reports/zoo.lock.json"))(snapshot)
    app.command("check", epilog=examples(
        "cnnscope check cnnscope.lock.json",
        "cnnscope check cnnscope.lock.json --rtol 0.01 --format json",
        "cnnscope check cnnscope.lock.json --allow-module mypkg"))(check)
