"""The console-example collector itself: parsing, matching, filters, rewriting."""

from __future__ import annotations

import textwrap

import pytest

from tests.docs import console


def write(tmp_path, text):
    path = tmp_path / "page.md"
    path.write_text(textwrap.dedent(text))
    return path


def test_parse_commands_outputs_markers_and_indented_fences(tmp_path):
    path = write(tmp_path, """\
        Text.

        <!-- not-checked: timing -->
        ```console
        $ cnnscope bench resnet18
        row
        ```

        - item

          ```console
          $ cnnscope zoo \\
              'resnet*'
          one
          $ echo hi
          hi
          ```
        <!-- needs: torchvision timm -->

        ```console
        $ cnnscope params torchvision:resnet50
        ```
        """)
    first, second, third = console.parse(path)
    assert first.not_checked == "timing" and first.lineno == 4
    assert [(c.line, c.expected) for c in second.commands] == [
        ("cnnscope zoo  'resnet*'", ["one"]), ("echo hi", ["hi"])]
    assert second.indent == "  " and second.not_checked is None
    assert third.needs == ("torchvision", "timm")


def test_a_block_must_start_with_a_command(tmp_path):
    path = write(tmp_path, "```console\noutput first\n$ cnnscope zoo\n```\n")
    with pytest.raises(ValueError, match="must start with"):
        console.parse(path)


@pytest.mark.parametrize("expected, actual, ok", [
    (["a", "b"], ["a", "b"], True),
    (["a", "b"], ["a", "c"], False),
    (["a", "..."], ["a"], True),                       # ... may stand for no line
    (["a", "...", "z"], ["a", "b", "c", "z"], True),
    (["a", "...", "z"], ["a", "b", "c"], False),
    (["a  ", ""], ["a"], True),                        # trailing spaces and blank lines
    (["a"], ["a", "b"], False),                        # an extra line is a difference
])
def test_matching(expected, actual, ok):
    assert console.matches(expected, actual) is ok


def test_update_keeps_what_matches_and_the_shape_of_an_ellipsis():
    assert console.updated(["a", "...", "z"], ["a", "b", "z"]) == ["a", "...", "z"]
    assert console.updated(["a", "...", "z"], ["A", "b", "c", "Z"]) == ["A", "...", "Z"]
    assert console.updated(["a", "b"], ["c"]) == ["c"]


def test_split_pipes_env_and_echo():
    env, argv, filters, echo = console._in_process_plan(
        "COLUMNS=120 cnnscope params resnet50 | grep -v x | head -3; echo \"exit $?\"")
    assert env == {"COLUMNS": "120"} and argv == ["params", "resnet50"]
    assert filters == [["grep", "-v", "x"], ["head", "-3"]] and echo
    assert console._in_process_plan("cnnscope zoo > out.txt") is None     # bash does it
    assert console._in_process_plan("cp a b") is None
    assert console._in_process_plan("cnnscope params x | jq .totals") is None


def test_filters():
    lines = ["alpha", "beta", "gamma"]
    assert console._filter(["grep", "a$"], lines) == ["alpha", "beta", "gamma"]
    assert console._filter(["grep", "-v", "beta"], lines) == ["alpha", "gamma"]
    assert console._filter(["head", "-2"], lines) == ["alpha", "beta"]
    assert console._filter(["tail", "-n", "1"], lines) == ["gamma"]
    # grep's basic syntax: \| alternates, a bare ( is a character; -E is the extended one
    assert console._filter(["grep", "^al\\|^ga"], lines) == ["alpha", "gamma"]
    assert console._filter(["grep", "(x"], ["a(x", "b"]) == ["a(x"]
    assert console._filter(["grep", "-E", "^(al|be)"], lines) == ["alpha", "beta"]


def test_in_process_run_is_a_terminal_unless_piped(tmp_path):
    table = console.run("cnnscope zoo lenet5", tmp_path)
    boxed = [ln for ln in table.splitlines() if ln[:1] in "┏┃┡│└"]
    assert boxed and all(len(ln) <= 80 for ln in boxed)  # COLUMNS=80
    piped = console.run("cnnscope params lenet5 | cat", tmp_path)
    assert "┏" not in piped and "lenet5  input 1x1x32x32" in piped
    error = console.run('cnnscope params nosuchnet; echo "exit $?"', tmp_path)
    assert error.startswith("cnnscope: error: unknown model 'nosuchnet'")
    assert error.endswith("exit 2\n")


def test_rewrite_replaces_only_the_outputs(tmp_path):
    path = write(tmp_path, """\
        Intro.

        ```console
        $ cnnscope zoo \\
          x
        old
        ...
        end
        $ echo hi
        stale
        ```

        Outro.
        """)
    block = console.parse(path)[0]
    assert console.rewrite(block, [["new", "a", "b", "last"], ["hi"]])
    assert path.read_text() == textwrap.dedent("""\
        Intro.

        ```console
        $ cnnscope zoo \\
          x
        new
        ...
        last
        $ echo hi
        hi
        ```

        Outro.
        """)
    assert not console.rewrite(console.parse(path)[0], [["new", "a", "b", "last"], ["hi"]])
