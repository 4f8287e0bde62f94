"""The console entry point exits directly (no interpreter teardown) but loses nothing."""

import subprocess
import sys

import pytest


@pytest.fixture
def run_code(warm_python):
    """``python -c CODE`` in a real process (a fork of the warm interpreter: what is under
    test is how ``run()`` ends the process, not the interpreter's start-up)."""
    def call(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([warm_python, "-c", code], capture_output=True, text=True)

    return call


def test_output_exit_code_and_atexit_handlers_survive_the_direct_exit(tmp_path, run_code):
    out = tmp_path / "lenet5.csv"
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('atexit ran', file=sys.stderr))\n"
        f"sys.argv = ['cnnscope', 'params', 'lenet5', '--format', 'csv', '-o', {str(out)!r}]\n"
        "print('buffered line', end='')\n"  # no newline: only a flush writes it
        "from cnnscope.cli.main import run\n"
        "run()\n"
    )
    done = run_code(code)
    assert done.returncode == 0
    assert done.stdout == "buffered line"
    assert "atexit ran" in done.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("name,type,kind") and len(lines) > 10


def test_user_errors_keep_their_exit_code_and_message(run_code):
    done = run_code("import sys; sys.argv = ['cnnscope', 'params', 'resnet5']\n"
                "from cnnscope.cli.main import run; run()")
    assert done.returncode == 2
    assert "unknown model 'resnet5'" in done.stderr and "Traceback" not in done.stderr


def test_python_m_cnnscope_uses_the_same_entry_point():
    done = subprocess.run([sys.executable, "-m", "cnnscope", "--version"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("cnnscope ")


def test_params_imports_only_what_it_needs(import_checks):
    # Start-up is most of `cnnscope params`' time: a stray import (pandas 0.3 s,
    # torch._dynamo 2.5 s, sympy 0.5 s, every zoo family file) would show up here first.
    # `cnnscope params resnet18 --format json -o /dev/null` through cnnscope.cli.main.app()
    # in a fresh interpreter (tests/conftest.py).
    assert import_checks["params_heavy"] == []
    assert import_checks["params_families"] == ["cnnscope.zoo.resnet"]
