"""Every console example in README.md and docs/ is run and compared with its output.

The convention and the reasons for a collector of our own are in tests/docs/console.py.
After a change that moves what commands print, regenerate every example in one command:

    CNNSCOPE_UPDATE_DOCS=1 .venv/bin/python -m pytest tests/docs

Blocks marked ``<!-- not-checked: REASON -->`` (timing) and blocks whose ``<!-- needs:
NAME -->`` (a package that must import, or a program on PATH) is missing are skipped with
that reason; pytest's summary counts them.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import os
import shutil

import pytest

from tests.docs import console

BLOCKS = [block for path in console.doc_files() for block in console.parse(path)]
_FOLDERS: dict = {}


def _available(name: str) -> bool:
    """A program on PATH (jq) or a package that imports here (torchvision, timm): an
    installed torchvision built for another torch does not count."""
    if shutil.which(name):
        return True
    if importlib.util.find_spec(name) is None:
        return False
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any failure to load means "not available"
        return False
    return True


def _folder(block, tmp_path_factory):
    # The blocks of a page share one folder, in page order (a block may read what an
    # earlier one wrote).
    if block.path not in _FOLDERS:
        _FOLDERS[block.path] = console.scratch_folder(tmp_path_factory.mktemp("page"))
    return _FOLDERS[block.path]


@pytest.fixture(scope="module")
def shims(tmp_path_factory):
    """Started on the first shell line that needs it: a warm interpreter (tests/warm.py)
    with the shell's environment, and the ``python``/``cnnscope`` names on PATH for it."""
    from tests.warm import warm_python

    with contextlib.ExitStack() as stack:
        made = []

        def get():
            if not made:
                warm = stack.enter_context(warm_python(env=console.shell_environment()))
                made.append(console.python_shims(tmp_path_factory.mktemp("shims"), warm.executable))
            return made[0]

        yield get


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_console_example(block, tmp_path_factory, shims):
    if block.not_checked:
        pytest.skip(f"not checked: {block.not_checked}")
    missing = [name for name in block.needs if not _available(name)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (the extended environment)")
    folder = _folder(block, tmp_path_factory)
    outputs = [console.clean(console.run(cmd.line, folder, shims)) for cmd in block.commands]
    if os.environ.get(console.UPDATE_VARIABLE):
        console.rewrite(block, outputs)
        return
    for cmd, output in zip(block.commands, outputs):
        if not console.matches(cmd.expected, output):
            diff = "\n".join(difflib.unified_diff(console.clean(cmd.expected), output,
                                                  "documented", "printed now", lineterm=""))
            pytest.fail(f"{block.id}: `{cmd.line}` prints something else now:\n{diff}\n"
                        f"regenerate every example: {console.UPDATE_COMMAND}", pytrace=False)


def test_blocks_are_found():
    # The collector must see the examples: a fence it cannot read would silently test
    # nothing. README.md's tour alone has several.
    assert sum(1 for b in BLOCKS if b.path.name == "README.md") >= 3
    assert all(block.commands for block in BLOCKS)
