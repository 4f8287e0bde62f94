"""CLI conventions a newcomer expects: -V, format from the -o file name, choices and
examples in every command's help, no colour codes where none belong, one-model compare."""

import json
import os

import pytest

from cnnscope.cli.main import app, main

COMMANDS = sorted(c.name for c in app.registered_commands)


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag, capsys):
    from cnnscope import __version__

    assert run([flag], capsys)[:2] == (0, f"cnnscope {__version__}\n")


@pytest.mark.parametrize("name, first", [
    ("r.json", "{"), ("r.csv", "name,type,kind"), ("r.md", "## lenet5"), ("r.txt", "lenet5  input"),
    ("r.CSV", "name,type,kind"),
])
def test_the_file_name_picks_the_format(tmp_path, capsys, name, first):
    assert run(["params", "lenet5", "-o", str(tmp_path / name)], capsys)[0] == 0
    text = (tmp_path / name).read_text()
    assert text.startswith(first)
    if name == "r.json":
        assert json.loads(text)["model"] == "lenet5"


def test_format_and_file_name_that_disagree_are_one_line(tmp_path, capsys):
    code, out, err = run(["params", "lenet5", "-o", str(tmp_path / "r.json"), "-f", "csv"], capsys)
    assert code == 2 and out == ""
    assert "names a json file but --format is csv" in err
    assert not (tmp_path / "r.json").exists()
    # An explicit format with a name that says nothing is the user's choice.
    assert run(["params", "lenet5", "-o", str(tmp_path / "r.out"), "-f", "csv"], capsys)[0] == 0
    assert (tmp_path / "r.out").read_text().startswith("name,type,kind")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_examples_and_no_bool_placeholders(command, capsys):
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0
    assert "Examples" in out and "$ cnnscope " in out.split("Examples", 1)[1]
    options = out.split("Options", 1)[1].split("Examples", 1)[0]
    flag_lines = [line for line in options.splitlines() if "<bool>" in line]
    assert all("--help" in line for line in flag_lines), flag_lines


def test_choices_are_shown_in_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = run(["params", "--help"], capsys)[1]
    assert "table|csv|json|md" in out and "cnnscope|fvcore" in out
    assert "meta|cpu|cuda[:N]" in out
    out = run(["bench", "--help"], capsys)[1]
    assert "fp32|tf32|bf16|fp16" in out and "infer|train" in out


def test_an_unknown_counter_is_a_usage_error(capsys):
    code, _, err = run(["params", "lenet5", "--counter", "thop"], capsys)
    assert code == 2 and "thop" in err and len(err.strip().splitlines()) == 1


def test_compare_with_one_model_is_one_line(capsys):
    code, out, err = run(["compare", "resnet18"], capsys)
    assert code == 2 and out == ""
    assert err.strip() == ("cnnscope: error: compare needs two or more models, got one (resnet18) "
                           "(name another to compare with, or see one model with: "
                           "cnnscope params resnet18)")


def _tty_output(python, args, env):
    """Run the CLI on a pseudo-terminal and return what it printed."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI with the pty as its terminal
        os.environ.update(env)
        os.execv(python, [python, "-m", "cnnscope", *args])
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode("utf-8", "replace")


ESC = "\x1b["


def test_a_terminal_gets_colour_and_no_color_or_a_pipe_gets_none(warm_python):
    coloured = _tty_output(warm_python, ["params", "lenet5"], {"COLUMNS": "120", "TERM": "xterm-256color"})
    assert ESC in coloured
    for env, args in (({"NO_COLOR": "1"}, ["params", "lenet5"]),
                      ({}, ["--no-color", "params", "lenet5"])):
        plain = _tty_output(warm_python, args, {"COLUMNS": "120", "TERM": "xterm-256color", **env})
        assert ESC not in plain and "c1" in plain


def test_a_pipe_gets_no_colour_even_when_forced(run_main, monkeypatch):
    # In-process: captured output is not a terminal, as a pipe (the terminal cases above
    # need a real pty, hence a process each).
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("FORCE_COLOR", "1")
    piped = run_main("params", "lenet5")
    assert piped.exit_code == 0 and "c1" in piped.stdout
    assert ESC not in piped.stdout
