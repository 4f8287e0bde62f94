"""The ``cnnscope`` command: a typer app assembled from the command modules of this package.

Every module in ``cnnscope.cli`` with a ``register(app)`` function adds its commands;
``ORDER`` sorts them in ``--help``. Command modules import heavy packages lazily, so
``cnnscope --help`` and ``cnnscope params`` stay fast.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import sys

import typer

import cnnscope.cli as _cli_pkg

app = typer.Typer(
    name="cnnscope",
    help="Architecture analyzer and profiler for convolutional networks.",
    pretty_exceptions_enable=False,  # user errors are one line; a bug keeps its plain traceback
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
    epilog="[bold]Examples[/bold]\n\n  $ cnnscope params resnet50\n\n"
           "  $ cnnscope compare vgg16 googlenet\n\n  $ cnnscope rf resnet50\n\n"
           "  $ cnnscope bench resnet18 --device cpu\n\n"
           "  $ cnnscope check reports/zoo.lock.json",
)


def _load_commands() -> None:
    modules = []
    for info in pkgutil.iter_modules(_cli_pkg.__path__):
        if info.name in ("main", "common") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"cnnscope.cli.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    for module in sorted(modules, key=lambda m: getattr(m, "ORDER", 100)):
        module.register(app)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", "-V", metavar="", is_eager=True,
                                 help="Print the version and exit."),
    no_color: bool = typer.Option(False, "--no-color", metavar="",
                                  help="No colours in tables (also: the NO_COLOR variable; "
                                       "piped output never has any)."),
) -> None:
    """Architecture analyzer and profiler for convolutional networks.

    Counts params, MACs and FLOPs per layer on the meta device (nothing allocated),
    computes receptive fields and output sizes, rebuilds the papers' spec tables, and
    times forward and backward passes. 'cnnscope COMMAND --help' shows each command's
    options and examples.
    """
    if no_color:
        from cnnscope.patches import set_environ

        set_environ("no-color", "NO_COLOR", "1")  # read by the console that renders the tables
    if version:
        from cnnscope import __version__

        typer.echo(f"cnnscope {__version__}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


_load_commands()


@functools.cache
def command():
    """The Click command typer builds from ``app``, built once per process.

    ``app()`` builds it again on every call (~8 ms: every command's signature and type
    hints are read); a process that runs several commands (the docs' examples, the
    tests, a notebook calling ``main``) builds it once. It depends only on ``app``, which
    is complete once this module is imported.
    """
    return typer.main.get_command(app)


def main(argv: list[str] | None = None) -> int:
    """Run one command in this process and return its exit code (never raises SystemExit).

    The exit codes: 0 success, 1 drift or failed rows (the command's own verdict),
    2 anything the user can fix (a one-line ``cnnscope: error: ...`` on stderr), 130
    interrupted (Ctrl-C). Click's usage errors (unknown option, ``--batch 1.5``, a
    missing argument) get the same one-line form instead of Click's box.
    """
    from cnnscope.cli.common import report_usage_error
    from cnnscope.usercode import interrupts_marked

    click_error, usage_error = _click_exceptions()
    with interrupts_marked():
        try:
            # What app() does, less its sys.excepthook swap: typer's hook hands a bug's
            # traceback to Python's own when pretty exceptions are off, as they are here.
            result = command()(args=argv, prog_name="cnnscope", standalone_mode=False)
        except typer.Exit as done:  # --help, --version, a command's own exit code
            return done.exit_code
        except usage_error as err:
            return report_usage_error(err)
        except click_error as err:
            from cnnscope.printable import printable

            print(f"cnnscope: error: {printable(err.format_message())}", file=sys.stderr)
            return err.exit_code
        except typer.Abort:  # Ctrl-C outside a command body
            print("cnnscope: interrupted", file=sys.stderr)
            return 130
        except SystemExit as done:  # sys.exit("message"): print it, as Python does
            if done.code is None or isinstance(done.code, int):
                return done.code or 0
            print(done.code, file=sys.stderr)
            return 1
    return result if isinstance(result, int) else 0


def _click_exceptions() -> tuple[type, type]:
    """Click's ClickException and UsageError: vendored by typer >= 0.24, else click's."""
    try:
        from typer._click.exceptions import ClickException, UsageError
    except ImportError:
        from click.exceptions import ClickException, UsageError
    return ClickException, UsageError


def run() -> None:
    """Console-script entry point: run the command, then exit without interpreter teardown.

    Once a command has written its output, Python would still free every module and
    object one by one before the process ends: 0.4 s with torch loaded, more than
    building and tracing ResNet-152. So the exit is direct (``os._exit``), after what a
    normal exit guarantees: atexit handlers run and stdout/stderr are flushed. A bug's
    traceback still goes the normal way.
    """
    from cnnscope.patches import exit_now

    exit_now(main(sys.argv[1:]))
