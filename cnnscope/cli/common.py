"""Options shared by every command, and the one place errors become exit codes."""

from __future__ import annotations

import io
import os
import sys
from contextlib import contextmanager
from enum import Enum
from typing import Any, Iterator, Optional

import typer

import cnnscope.patches as patches
from cnnscope.errors import CnnscopeError


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    md = "md"


class Counter(str, Enum):
    cnnscope = "cnnscope"
    fvcore = "fvcore"


class Detections(str, Enum):
    """How a detection model's boxes are counted (``cnnscope.thirdparty.detection_caps``)."""

    caps = "caps"  # at the configured caps, whatever the weights
    data = "data"  # what the random weights keep


# What an -o file name says about its format (--format, when given, must agree).
SUFFIX_FORMATS = {".json": OutputFormat.json, ".csv": OutputFormat.csv, ".md": OutputFormat.md,
                  ".markdown": OutputFormat.md, ".txt": OutputFormat.table}

InputOpt = typer.Option(None, "--input", "-i", help="Input size C, CxL, CxHxW or CxTxHxW (default: the model's own).",
                        metavar="CxHxW")
InputsOpt = typer.Option(None, "--input", "-i", metavar="CxHxW",
                         help="Input size C, CxL, CxHxW or CxTxHxW (default: the model's own); "
                              "repeat it, one per positional forward argument, for a model "
                              "taking several inputs: --input 3x224x224 --input 1x224x224.")
BatchOpt = typer.Option(1, "--batch", "-b", help="Batch size (>= 1).")
FormatOpt = typer.Option(None, "--format", "-f", case_sensitive=False,
                         help="Output format (default: from the -o file name: .json, .csv, .md; "
                              "else table).")
# A picture extension on -o would get a text table in a file named .png: refused while
# the options are parsed (before any tracing), pointing to --plot, which draws pictures.
PICTURE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".pdf", ".gif", ".webp", ".tif", ".tiff",
                    ".bmp", ".eps", ".ps")


def _text_output(value: Optional[str]) -> Optional[str]:
    from pathlib import PurePath

    if value and PurePath(value).suffix.lower() in PICTURE_SUFFIXES:
        raise typer.BadParameter(
            f"{PurePath(value).name} is a picture, and -o writes text (a table, CSV, JSON or "
            "Markdown); draw pictures with --plot FILE where the command has it")
    return value


OutputOpt = typer.Option(None, "--output", "-o", metavar="FILE", callback=_text_output,
                         help="Write to this file (atomically) instead of stdout (text: a "
                              "picture name such as .png is refused; see --plot).")
WideOpt = typer.Option(False, "--wide", metavar="",
                       help="Every column, names whole, however wide the table gets (by default "
                            "a table is fitted to the terminal: low-priority columns are left "
                            "out, long names shortened in the middle, and the footer says so).")
ExplainOpt = typer.Option(False, "--explain", metavar="",
                          help="Under the table, the counting conventions in full (by default "
                               "at most two lines about the columns shown; Markdown output "
                               "always has the full text).")
DeviceOpt = typer.Option("meta", "--device", "-d", metavar="meta|cpu|cuda[:N]",
                         help="meta (default: nothing allocated), cpu or cuda.")


def resolve_format(format: Optional[OutputFormat], output: Optional[str]) -> OutputFormat:
    """The format asked for, else the one the -o file name says, else a table.

    ``-o r18.json`` alone writes JSON; ``-o r18.json --format csv`` is a contradiction
    and a one-line error rather than a CSV file named .json.
    """
    from pathlib import PurePath

    from cnnscope.errors import InvalidOptionError

    said = SUFFIX_FORMATS.get(PurePath(output).suffix.lower()) if output else None
    if format is None:
        return said or OutputFormat.table
    if said is not None and said is not format:
        raise InvalidOptionError(
            f"-o {output} names a {said.value} file but --format is {format.value}",
            f"drop --format, or name the file for {format.value}")
    return format


def examples(*lines: str) -> str:
    """An "Examples" block for a command's help (its epilog), one command a line."""
    return "[bold]Examples[/bold]\n\n" + "\n\n".join(f"  $ {line}" for line in lines)


def fail(err: CnnscopeError) -> None:
    """Print one line on stderr and exit with the error's code (2 for user errors)."""
    from cnnscope.printable import printable

    typer.echo(f"cnnscope: error: {printable(str(err))}", err=True)
    raise typer.Exit(err.exit_code)


def report_usage_error(err) -> int:
    """A Click usage error (unknown option, bad value, missing argument) as one line."""
    ctx = getattr(err, "ctx", None)
    where = ctx.command_path if ctx is not None else "cnnscope"
    from cnnscope.printable import printable

    message = " ".join(err.format_message().split())  # Click's messages may wrap
    typer.echo(f"cnnscope: error: {printable(message)} (see '{where} --help')", err=True)
    return 2


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn what goes wrong inside a command into one line on stderr and an exit code.

    A ``CnnscopeError`` is the user's to fix (exit 2). A real Ctrl-C is exit 130. An exit
    or a ``BaseException`` that got this far came from model code (cnnscope's own code
    never calls ``sys.exit``), so it can never end the command with a code of its choice.
    """
    from cnnscope.usercode import real_interrupt

    try:
        yield
    except CnnscopeError as err:
        fail(err)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", None)  # errors.Stopped: a signal the launcher caught
        if signum is not None or real_interrupt():
            import signal

            name = "" if signum in (None, signal.SIGINT) else f" ({signal.Signals(signum).name})"
            typer.echo(f"cnnscope: interrupted{name}", err=True)
            raise typer.Exit(128 + (signum or signal.SIGINT))
        fail(CnnscopeError("model code raised KeyboardInterrupt",
                           "model code must not raise KeyboardInterrupt itself"))
    except SystemExit as exc:
        fail(CnnscopeError(f"model code called sys.exit({exc.code!r})",
                           "model code must return or raise, not exit the process"))
    except (Exception, typer.Exit):
        raise  # a bug keeps its traceback; typer.Exit is a command's own verdict
    except BaseException as exc:  # noqa: BLE001 - GeneratorExit, custom BaseExceptions
        fail(CnnscopeError(f"model code raised {type(exc).__name__}"))


def parse_size(text: Optional[str]) -> Optional[tuple[int, ...]]:
    from cnnscope.trace.sizes import parse_input_size

    return parse_input_size(text) if text is not None else None


def parse_sizes(texts: Optional[list[str]]):
    """Repeated ``--input``: None, one size, or a tuple of sizes (one per forward argument)."""
    from cnnscope.trace.sizes import parse_input_sizes

    return parse_input_sizes(texts)


def emit(text: str, output: Optional[str], *, quiet: bool = False) -> None:
    """Write ``text`` to the file ``output`` (see ``cnnscope.fileio``), or to stdout.
    ``quiet``: no "wrote FILE" line (a partial write that a final one will follow)."""
    if output:
        from cnnscope.fileio import write_text_atomic

        write_text_atomic(output, text)
        if not quiet:
            typer.echo(f"wrote {output}", err=True)
    else:
        write_stdout(text)


def write_stdout(text: str) -> None:
    """Write to stdout as a well-behaved filter does.

    - stdout closed (``>&-``): a one-line error, exit 2;
    - the reader went away (``| head -1``): stop quietly, with the command's own exit code;
    - a write error (``> /dev/full``): a one-line error, exit 2;
    - an encoding that cannot show the text (``PYTHONIOENCODING=ascii``, ``LC_ALL=C``):
      box drawing falls back to ASCII, anything else to ``?``.
    """
    from cnnscope.errors import UserFileError

    stream = sys.stdout
    if stream is None or getattr(stream, "closed", False):
        raise UserFileError("standard output is closed", "redirect it (> FILE) or use -o FILE")
    encoding = "ascii" if _c_locale() else getattr(stream, "encoding", None) or "utf-8"
    text = encodable(text, encoding)
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        _silence_stdout()
    except OSError as exc:
        from cnnscope.fileio import write_error

        _silence_stdout()  # drop what is buffered, or the exit would try again and fail
        raise write_error("standard output", exc) from None


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null: later flushes (at exit) succeed and print nothing."""
    patches.for_process("stdout-devnull", _stdout_to_devnull)


def _stdout_to_devnull() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


# Box drawing and the few other non-ASCII characters cnnscope prints, as ASCII.
_ASCII = str.maketrans({**{c: "-" for c in "─━═╌┄┈╍"}, **{c: "|" for c in "│┃║╎┆┊"},
                        **{c: "+" for c in "┌┐└┘├┤┬┴┼┏┓┗┛┣┫┳┻╋┡┩╇╈╞╡╪╔╗╚╝╠╣╦╩╬╭╮╯╰┢┪┯┷┿"},
                        "×": "x", "…": "...", "–": "-", "—": "-", "≈": "~", "≤": "<=",
                        "≥": ">=", "→": "->", "²": "^2", "·": "*", "µ": "u"})


def _c_locale() -> bool:
    """Did the user ask for the C/POSIX locale (LC_ALL=C)? Python then still writes UTF-8
    (PEP 538), but such a terminal shows box drawing as mojibake: give it ASCII."""
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = os.environ.get(var)
        if value:
            return value in ("C", "POSIX")
    return False


def encodable(text: str, encoding: str) -> str:
    """``text`` if ``encoding`` can write it, else its ASCII fallback."""
    try:
        text.encode(encoding)
        return text
    except (UnicodeEncodeError, LookupError):
        return text.translate(_ASCII).encode("ascii", "replace").decode("ascii")


def terminal_width(is_terminal: bool) -> int:
    """The table width: COLUMNS when it is a sane number, else the terminal's, else 160.

    Piped or captured output gets a page-wide 160 (80 would fold the numbers). COLUMNS=0
    or nonsense counts as unset.
    """
    text = os.environ.get("COLUMNS", "").strip()
    if text.isdigit() and 20 <= int(text) <= 10_000:
        return int(text)
    if is_terminal:
        try:
            return max(20, os.get_terminal_size(sys.stdout.fileno()).columns)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass
    return 160


def console(output: Optional[str] = None):
    """A Rich console that records into memory; ``flush_console`` writes what it holds.

    For a file it is plain text at 160 columns; for stdout it takes the terminal's
    width and colours (none when piped, with ``NO_COLOR``, or for a dumb terminal).
    Rendering into memory first means a failed write never leaves half a table.
    """
    from rich.console import Console

    if output:
        return Console(record=True, width=160, file=io.StringIO(), color_system=None)
    stream = sys.stdout
    try:
        is_terminal = bool(stream is not None and stream.isatty())
    except (ValueError, AttributeError):
        is_terminal = False
    colour = is_terminal and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    # A height as well: given a width alone, Rich sizes a TERM=dumb terminal 80x25 and
    # ignores the width (COLUMNS=120 TERM=dumb printed 80-column tables).
    return Console(file=io.StringIO(), force_terminal=is_terminal,
                   width=terminal_width(is_terminal), height=25,
                   color_system="auto" if colour else None, highlight=colour)


def flush_console(con, output: Optional[str]) -> None:
    """Write what ``console(output)`` recorded: plain text to the file, or to stdout."""
    if output:
        emit(con.export_text(), output)
    else:
        write_stdout(con.file.getvalue())


def write_result(result: Any, format: Optional[OutputFormat], output: Optional[str], *,
                 wide: bool = False, explain: bool = False, quiet: bool = False,
                 **options: Any) -> None:
    """Write one result in the chosen format: every command's last step.

    The result becomes a ``Document`` (``cnnscope.report.render``; ``options`` are its
    type's own, e.g. ``top``), printed by the one renderer of the format. ``format`` None
    takes it from the -o file name; a table goes to a file as plain text at 160 columns.
    """
    from cnnscope.report import document as render
    from cnnscope.report.render import document

    format = resolve_format(format, output)
    doc = document(result, **options)
    if format is OutputFormat.table:
        con = console(output)
        render.render_table(doc, con, wide=wide, explain=explain)
        flush_console(con, output)
        return
    emit(render.render_text(doc, format.value), output, quiet=quiet)
