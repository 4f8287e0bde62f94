"""Console examples in the docs: find them, run them, compare them, rewrite them.

The convention (docs/contributing.md, "Console examples"):

- a fenced ```` ```console ```` block; a line starting with ``$ `` is a command (a trailing
  ``\\`` continues it on the next line), the lines after it up to the next ``$ `` are
  its exact output as an 80-column terminal shows it (an env prefix such as
  ``$ COLUMNS=120 cnnscope ...`` changes the width); as in an interactive shell,
  COLUMNS is not exported, so piped output gets cnnscope's piped width (160);
- a line that is only ``...`` stands for any number of lines (doctest's ellipsis), so
  a long table can show its head and its total;
- the blocks of one page run in order in one scratch folder holding copies of
  ``examples/`` and ``reports/`` (a block may use the files an earlier one wrote);
- ``<!-- not-checked: REASON -->`` on the line before a block shows it without running
  it (timing only); ``<!-- needs: torchvision timm -->`` runs it only where those
  packages import (the extended environment), and skips it elsewhere with that reason.

Why a collector of our own rather than pytest-examples, sybil or mktestdocs: those run
Python snippets (or shell blocks without comparing output), none knows that `cnnscope`
can run in this process, and none rewrites a console transcript in place. Running
`cnnscope` in-process costs its work only (no interpreter start, no `import torch`):
about 1.2 s less per command than `.venv/bin/cnnscope`, a minute over the docs' examples
(tests/docs/test_console_examples.py says what was measured). Commands that are not a
plain `cnnscope ...` (optionally piped through cat, grep, head or tail) run in bash.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UPDATE_VARIABLE = "CNNSCOPE_UPDATE_DOCS"
UPDATE_COMMAND = f"{UPDATE_VARIABLE}=1 .venv/bin/python -m pytest tests/docs"
ELLIPSIS = "..."
FILTERS = ("cat", "grep", "head", "tail")
# What every example runs under: a UTF-8 terminal without colour codes, 80 columns wide.
# Like an interactive shell, it does not export COLUMNS: a command whose output is piped
# or redirected gets cnnscope's width for pipes (160), unless the example sets COLUMNS.
TERMINAL_WIDTH = "80"
BASE_ENV = {"NO_COLOR": "1", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
DROP_ENV = ("COLUMNS", "LC_ALL", "LC_CTYPE", "FORCE_COLOR", "CLICOLOR_FORCE", "TERM")

_FENCE = re.compile(r"^(?P<indent>\s*)```console\s*$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not-checked|needs):\s*(?P<value>.*?)\s*-->\s*$")


@dataclass
class Command:
    line: str                      # the command, without "$ " (continuations joined)
    expected: list[str]            # its output lines as written in the docs
    raw: list[str] = field(default_factory=list)  # its line(s) as written


@dataclass
class Block:
    path: Path
    index: int                     # the n-th console block of its file
    lineno: int                    # 1-based line of the opening fence
    indent: str
    commands: list[Command] = field(default_factory=list)
    not_checked: str | None = None
    needs: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.lineno}"


def doc_files() -> list[Path]:
    """README.md and every page under docs/ (the drafts in docs/_incoming too)."""
    return [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))


def parse(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        block = Block(path, len(blocks), i + 1, match["indent"])
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = _MARKER.match(prev)
        if marker and marker["kind"] == "not-checked":
            block.not_checked = marker["value"] or "no reason given"
        elif marker:
            block.needs = tuple(marker["value"].split())
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(block.indent):] if lines[i].startswith(block.indent)
                        else lines[i].lstrip())
            i += 1
        if i == len(lines):
            raise ValueError(f"{path}:{block.lineno}: console block is not closed")
        block.commands = _commands(body, f"{path}:{block.lineno}")
        blocks.append(block)
        i += 1
    return blocks


def _commands(body: list[str], where: str) -> list[Command]:
    commands: list[Command] = []
    j = 0
    while j < len(body):
        text = body[j]
        if not text.startswith("$ "):
            if not commands:
                raise ValueError(f"{where}: console block must start with a '$ ' command line")
            commands[-1].expected.append(text)
            j += 1
            continue
        line, raw = text[2:], [text]
        while line.endswith("\\") and j + 1 < len(body):
            j += 1
            line = line[:-1] + " " + body[j].strip()
            raw.append(body[j])
        commands.append(Command(line, [], raw))
        j += 1
    return commands


# --- running ---------------------------------------------------------------------------

class _Stream(io.StringIO):
    """A text stream that says whether it is a terminal and logs into a shared list."""

    def __init__(self, log: list, tag: str, tty: bool):
        super().__init__()
        self._log, self._tag, self._tty = log, tag, tty

    def isatty(self) -> bool:
        return self._tty

    @property
    def encoding(self) -> str:
        return "utf-8"

    def write(self, text) -> int:
        if isinstance(text, bytes):  # typer/click echo may hand over encoded text
            text = text.decode("utf-8", "replace")
        self._log.append((self._tag, text))
        return len(text)


@contextlib.contextmanager
def _environment(extra: dict[str, str]):
    saved = dict(os.environ)
    for name in DROP_ENV:
        os.environ.pop(name, None)
    os.environ.update(BASE_ENV)
    os.environ.update(extra)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _split(line: str) -> tuple[dict[str, str], list[list[list[str]]]] | None:
    """``A=1 cnnscope x | grep y; echo "exit $?"`` -> env, [[stage, stage], [echo...]]."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";|&<>()")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return None
    env: dict[str, str] = {}
    while tokens and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tokens[0]):
        name, _, value = tokens.pop(0).partition("=")
        env[name] = value
    sequences: list[list[list[str]]] = [[[]]]
    for token in tokens:
        if token == ";":
            sequences.append([[]])
        elif token == "|":
            sequences[-1].append([])
        elif token in ("&", "&&", "||", "<", ">", ">>", "(", ")"):
            return None  # leave it to bash
        else:
            sequences[-1][-1].append(token)
    return env, [s for s in sequences if s != [[]]]


def _in_process_plan(line: str):
    """The command as (env, cnnscope argv, filters, echo exit code) when this process can
    run it, else None."""
    split = _split(line)
    if split is None:
        return None
    env, sequences = split
    echo_exit = False
    if len(sequences) == 2 and sequences[1] == [["echo", "exit $?"]]:
        echo_exit = True
        sequences = sequences[:1]
    if len(sequences) != 1:
        return None
    stages = sequences[0]
    if not stages[0] or stages[0][0] != "cnnscope":
        return None
    if any(not stage or stage[0] not in FILTERS for stage in stages[1:]):
        return None
    return env, stages[0][1:], stages[1:], echo_exit


def _filter(stage: list[str], lines: list[str]) -> list[str]:
    name, args = stage[0], stage[1:]
    if name == "cat" and not args:
        return lines
    if name in ("head", "tail"):
        count = 10
        if args and re.fullmatch(r"-\d+", args[0]):
            count = int(args[0][1:])
        elif len(args) == 2 and args[0] == "-n":
            count = int(args[1])
        elif args:
            raise ValueError(f"unsupported {name} arguments: {args}")
        return lines[:count] if name == "head" else lines[-count:] if count else []
    if name == "grep":
        flags = [a for a in args if a.startswith("-")]
        patterns = [a for a in args if not a.startswith("-")]
        if len(patterns) != 1 or set(flags) - {"-v", "-E", "-F", "-i"}:
            raise ValueError(f"unsupported grep arguments: {args}")
        pattern = (re.escape(patterns[0]) if "-F" in flags
                   else patterns[0] if "-E" in flags else _basic_regex(patterns[0]))
        found = re.compile(pattern, re.IGNORECASE if "-i" in flags else 0)
        keep = "-v" not in flags
        return [ln for ln in lines if bool(found.search(ln)) == keep]
    raise ValueError(f"unsupported filter: {stage}")


def _basic_regex(pattern: str) -> str:
    """grep's basic regular expression as Python's: ``\\|``, ``\\(`` are the operators
    there, and a bare ``|``, ``(``, ``+``, ``?`` or brace is a literal character."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "|(){}+?":
            out.append(pattern[i + 1])
            i += 2
            continue
        out.append(re.escape(char) if char in "|(){}+?" else char)
        if char == "\\" and i + 1 < len(pattern):
            out.append(pattern[i + 1])
            i += 1
        i += 1
    return "".join(out)


def run_in_process(env: dict[str, str], argv: list[str], filters: list[list[str]],
                   echo_exit: bool) -> str:
    """Run ``cnnscope ARGV`` here as a terminal (or a pipe, with filters) would show it.

    Unpiped, stdout and stderr are one stream in the order they were written, as on a
    terminal; piped, the filters get stdout and stderr comes first (the commands render
    into memory and write stdout last).
    """
    from cnnscope.cli.main import main

    log: list[tuple[str, str]] = []
    out = _Stream(log, "out", tty=not filters)
    err = _Stream(log, "err", tty=False)
    terminal = {} if filters else {"COLUMNS": TERMINAL_WIDTH}  # the tty's width
    with _environment({**terminal, **env}), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        code = main(argv)
    if filters:
        lines = "".join(t for tag, t in log if tag == "out").splitlines()
        for stage in filters:
            lines = _filter(stage, lines)
        text = "".join(t for tag, t in log if tag == "err") + "".join(f"{ln}\n" for ln in lines)
    else:
        text = "".join(t for _, t in log)
    if echo_exit:
        text += ("" if not text or text.endswith("\n") else "\n") + f"exit {code}\n"
    return text


def shell_environment() -> dict[str, str]:
    """What a shell line runs under: the example terminal's variables, the virtual
    environment's bin first on PATH, the checkout on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
    env.update(BASE_ENV)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


# The console script pip writes for `cnnscope`, run by the stand-in python beside it.
CNNSCOPE_SHIM = """#!/bin/sh
exec "$(dirname "$0")/python" -c 'import re, sys
from cnnscope.cli.main import run
sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
sys.exit(run())' "$@"
"""


def python_shims(folder: Path, python: str) -> Path:
    """A folder of ``python``, ``python3`` and ``cnnscope`` that run with ``python`` (the
    warm interpreter's stand-in, tests/warm.py): put first on PATH, the examples' own
    Python commands skip ``import torch`` at start-up, as every other test process does."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        (folder / name).symlink_to(python)
    (folder / "cnnscope").write_text(CNNSCOPE_SHIM)
    (folder / "cnnscope").chmod(0o755)
    return folder


def run_in_shell(line: str, cwd: Path, shims: Path | None = None) -> str:
    """Run the line in bash, the virtual environment's bin first on PATH (after
    ``shims``, where given)."""
    env = shell_environment()
    if shims is not None:
        env["PATH"] = f"{shims}{os.pathsep}{env['PATH']}"
    done = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)
    return done.stdout


def run(line: str, cwd: Path, shims=None) -> str:
    """The command's output; ``shims`` (called only for a shell line) gives a folder for
    the front of PATH (see ``python_shims``)."""
    plan = _in_process_plan(line)
    if plan is None:
        return run_in_shell(line, cwd, shims() if shims else None)
    before = os.getcwd()
    os.chdir(cwd)
    try:
        return run_in_process(*plan)
    finally:
        os.chdir(before)


def scratch_folder(path: Path) -> Path:
    """A page's scratch folder: copies of examples/ and reports/ for its commands."""
    for name in ("examples", "reports"):
        shutil.copytree(ROOT / name, path / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return path


# --- comparing and rewriting -----------------------------------------------------------

def clean(text_or_lines) -> list[str]:
    lines = text_or_lines.splitlines() if isinstance(text_or_lines, str) else list(text_or_lines)
    lines = [ln.rstrip() for ln in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line, ``...`` matching any run of lines (none included)."""
    expected, actual = clean(expected), clean(actual)
    memo: dict[tuple[int, int], bool] = {}

    def at(i: int, j: int) -> bool:
        if (i, j) not in memo:
            if i == len(expected):
                memo[i, j] = j == len(actual)
            elif expected[i] == ELLIPSIS:
                memo[i, j] = any(at(i + 1, k) for k in range(j, len(actual) + 1))
            else:
                memo[i, j] = j < len(actual) and expected[i] == actual[j] and at(i + 1, j + 1)
        return memo[i, j]

    return at(0, 0)


def updated(expected: list[str], actual: list[str]) -> list[str]:
    """The expected lines for this output: kept when they still match; else the output,
    shortened as before (the same number of lines before and after an ``...``)."""
    if matches(expected, actual):
        return expected
    actual = clean(actual)
    old = clean(expected)
    if ELLIPSIS not in old:
        return actual
    head = old.index(ELLIPSIS)
    tail = len(old) - 1 - max(i for i, ln in enumerate(old) if ln == ELLIPSIS)
    if head + tail >= len(actual):
        return actual
    return actual[:head] + [ELLIPSIS] + (actual[len(actual) - tail:] if tail else [])


def rewrite(block: Block, outputs: list[list[str]]) -> bool:
    """Write new expected outputs into the block's file; True when the file changed."""
    text = block.path.read_text(encoding="utf-8")
    lines = text.splitlines()
    fresh = parse(block.path)[block.index]
    start = fresh.lineno  # the line after the fence, 0-based
    end = start
    while lines[end].strip() != "```":
        end += 1
    body = []
    for command, output in zip(fresh.commands, outputs):
        body.extend(command.raw)
        body.extend(updated(command.expected, output))
    new = lines[:start] + [(block.indent + ln) if ln else "" for ln in body] + lines[end:]
    new_text = "\n".join(new) + ("\n" if text.endswith("\n") else "")
    if new_text == text:
        return False
    block.path.write_text(new_text, encoding="utf-8")
    return True
