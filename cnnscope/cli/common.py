"""Options shared by every command, and the one place errors become exit codes."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from enum import Enum
from typing import Any, Callable, Iterator, Optional

import typer

from cnnscope.errors import CnnscopeError


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    md = "md"


InputOpt = typer.Option(None, "--input", "-i", help="Input size C, CxL, CxHxW or CxTxHxW (default: the model's own).",
                        metavar="CxHxW")
InputsOpt = typer.Option(None, "--input", "-i", metavar="CxHxW",
                         help="Input size C, CxL, CxHxW or CxTxHxW (default: the model's own); "
                              "repeat it, one per positional forward argument, for a model "
                              "taking several inputs: --input 3x224x224 --input 1x224x224.")
BatchOpt = typer.Option(1, "--batch", "-b", help="Batch size (>= 1).")
FormatOpt = typer.Option(OutputFormat.table, "--format", "-f", help="Output format.",
                         case_sensitive=False)
OutputOpt = typer.Option(None, "--output", "-o", help="Write to this file (atomically) instead of stdout.")
DeviceOpt = typer.Option("meta", "--device", "-d",
                         help="meta (default: nothing allocated), cpu or cuda.")


def fail(err: CnnscopeError) -> None:
    """Print one line on stderr and exit with the error's code (2 for user errors)."""
    typer.echo(f"cnnscope: error: {err}", err=True)
    raise typer.Exit(err.exit_code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a CnnscopeError raised inside a command into a one-line message."""
    try:
        yield
    except CnnscopeError as err:
        fail(err)
    except KeyboardInterrupt:
        typer.echo("cnnscope: interrupted", err=True)
        raise typer.Exit(130)


def parse_size(text: Optional[str]) -> Optional[tuple[int, ...]]:
    from cnnscope.trace.sizes import parse_input_size

    return parse_input_size(text) if text is not None else None


def parse_sizes(texts: Optional[list[str]]):
    """Repeated ``--input``: None, one size, or a tuple of sizes (one per forward argument)."""
    from cnnscope.trace.sizes import parse_input_sizes

    return parse_input_sizes(texts)


def emit(text: str, output: Optional[str]) -> None:
    """Write ``text`` to ``output`` atomically, or to stdout."""
    if output:
        from cnnscope.report.io import write_text_atomic

        write_text_atomic(output, text)
        typer.echo(f"wrote {output}", err=True)
    else:
        sys.stdout.write(text)


def console(output: Optional[str] = None):
    """A Rich console: the terminal, or a plain-text recorder when writing a file."""
    from rich.console import Console

    if output:
        return Console(record=True, width=160, file=open(_devnull(), "w"), color_system=None)
    con = Console()
    if not con.is_terminal and "COLUMNS" not in os.environ:
        # Piped or captured: 80 columns would fold the numbers; use a page-wide table.
        con = Console(width=160)
    return con


def _devnull() -> str:
    import os

    return os.devnull


def write_output(format: OutputFormat, output: Optional[str], *, rich: Callable[[Any], None],
                 csv: Callable[[], str], json: Callable[[], str], md: Callable[[], str]) -> None:
    """Write one result in the chosen format: every command's last step.

    ``rich(console)`` prints the table (recorded as plain text when ``output`` is a file);
    ``csv``, ``json`` and ``md`` return the text. Only the chosen one runs.
    """
    if format is OutputFormat.table:
        con = console(output)
        rich(con)
        if output:
            emit(con.export_text(), output)
        return
    text = {OutputFormat.csv: csv, OutputFormat.json: json, OutputFormat.md: md}[format]()
    emit(text, output)
