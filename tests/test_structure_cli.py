"""The CLI parses, calls ``cnnscope.api`` and renders: no function in ``cnnscope/cli`` is
over 40 lines (the whole ``def``, signature and decorators' target included, as ``ast``
counts it). A command with many options gathers them in a dataclass (``cli.options.takes``)
and its body stays short; what a command orchestrates belongs in the API."""

from __future__ import annotations

import ast
from pathlib import Path

import cnnscope

CLI_DIR = Path(cnnscope.__file__).parent / "cli"
MAX_LINES = 40


def long_functions(folder: Path = CLI_DIR, limit: int = MAX_LINES) -> list[str]:
    """``file:function (N lines)`` for every function of ``folder`` longer than ``limit``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.name}:{node.name} ({lines} lines)")
    return found


def test_no_cli_function_is_over_40_lines():
    assert long_functions() == [], "move the work into cnnscope.api, or the options into a dataclass"


def test_the_rule_counts_the_whole_def(tmp_path):
    # 2 signature lines + 39 body lines = 41: over, although the body alone is under 40.
    body = "".join(f"    x{i} = {i}\n" for i in range(39))
    (tmp_path / "long.py").write_text("def f(\n    a=1):\n" + body)
    (tmp_path / "short.py").write_text("def g():\n" + body)  # 1 + 39 = 40: fine
    assert long_functions(tmp_path) == ["long.py:f (41 lines)"]


def test_options_dataclass_gives_typer_the_fields_as_parameters():
    # The decorator's contract: the command's signature is the dataclass's fields, in order,
    # with their typer defaults, and the body receives one instance.
    import inspect
    from dataclasses import dataclass

    import typer
    from typer.testing import CliRunner

    from cnnscope.cli.options import takes

    @dataclass(frozen=True)
    class Options:
        name: str = typer.Argument(..., help="A name.")
        times: int = typer.Option(2, "--times", help="How often.")

    seen = []

    @takes(Options)
    def hello(o: Options) -> None:
        """Say hello."""
        seen.append(o)

    assert list(inspect.signature(hello).parameters) == ["name", "times"]
    app = typer.Typer()
    app.command()(hello)
    app.command("other")(lambda: None)  # two commands: typer keeps "hello" as a subcommand
    result = CliRunner().invoke(app, ["hello", "ada", "--times", "3"])
    assert result.exit_code == 0, result.output
    assert seen == [Options(name="ada", times=3)]
    assert "Say hello." in CliRunner().invoke(app, ["hello", "--help"]).output
