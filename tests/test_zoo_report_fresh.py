"""The committed zoo summary (reports/zoo.md and the README's zoo table) stays in step."""

from pathlib import Path

from cnnscope.analysis.zoo_table import ZooTable
from cnnscope.api import zoo_rows
from cnnscope.report.documents import render_text

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "cnnscope zoo --format md -o reports/zoo.md  (then paste it into README.md's zoo table)"


def test_zoo_markdown_report_and_readme_are_fresh():
    expected = render_text(ZooTable(tuple(zoo_rows())), "md")
    committed = ROOT / "reports" / "zoo.md"
    assert committed.exists(), f"missing {committed}; run: {REGENERATE}"
    assert committed.read_text() == expected, f"reports/zoo.md is stale; run: {REGENERATE}"
    assert expected in (ROOT / "README.md").read_text(), f"README zoo table is stale; run: {REGENERATE}"
