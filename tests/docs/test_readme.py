"""README.md is the quick start: short, its links resolve, and the CI gate is in it.

mkdocs checks the links of docs/ (tests/docs/test_mkdocs_build.py); the README is not part
of the site, so its links are checked here: relative paths (they work on GitHub and in a
checkout), each to a file that exists, and no anchor into a section that moved away."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    # GitHub's anchors: lower case, punctuation dropped, spaces to hyphens.
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_readme_is_a_quick_start():
    assert len(README.splitlines()) <= 300


def test_readme_links_resolve():
    anchors = {slug(h) for h in re.findall(r"^#+ (.*)$", README, flags=re.MULTILINE)}
    targets = LINK.findall(README)
    assert len(targets) >= 20
    for target in targets:
        assert not target.startswith(("http://", "https://", "/")), \
            f"README links into the repository with relative paths: {target}"
        path, _, anchor = target.partition("#")
        if not path:
            assert anchor in anchors, f"README links to a section it does not have: #{anchor}"
            continue
        assert (ROOT / path).exists(), f"README links to {path}, which does not exist"


def test_readme_shows_how_to_gate_ci():
    # A newcomer finds the gate from the README: a heading for it, and a workflow that
    # installs the CPU torch build and writes the Markdown summary.
    assert "## Add the gate to your CI" in README
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in README
    assert 'cnnscope check cnnscope.lock.json --format md >> "$GITHUB_STEP_SUMMARY"' in README
    assert "--format github" in README


def test_readme_setup_and_test_commands_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for command in ("./setup.sh", ".venv/bin/python -m pytest"):
        assert f"\n{command}" in README and f"\n{command}" in ci
