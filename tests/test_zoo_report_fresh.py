"""The committed zoo summary (reports/zoo.md and the zoo table of docs/zoo.md) stays in step."""

from pathlib import Path

from cnnscope.analysis.zoo_table import ZooTable
from cnnscope.api import zoo_rows
from cnnscope.report.render import render_text

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "cnnscope zoo --format md -o reports/zoo.md  (then paste it into docs/zoo.md's table)"


def test_zoo_markdown_report_and_docs_page_are_fresh():
    expected = render_text(ZooTable(tuple(zoo_rows())), "md")
    committed = ROOT / "reports" / "zoo.md"
    assert committed.exists(), f"missing {committed}; run: {REGENERATE}"
    assert committed.read_text() == expected, f"reports/zoo.md is stale; run: {REGENERATE}"
    page = (ROOT / "docs" / "zoo.md").read_text()
    assert expected in page, f"docs/zoo.md's zoo table is stale; run: {REGENERATE}"
