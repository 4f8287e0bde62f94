"""The committed spec reports: ``cnnscope spec --all -o reports/spec`` writes them.

``<table>.csv`` and ``<table>.md`` for every spec table. ``tests/test_reports_fresh.py``
renders the same texts in memory and fails when a committed file differs. (Rendering and
writing files is the command layer's job, so this is not in ``cnnscope.analysis``.)
"""

from __future__ import annotations

from pathlib import Path

from cnnscope.analysis.spec import SpecTable


def render_reports(tables: list[SpecTable] | None = None) -> dict[str, str]:
    """File name -> text of every committed spec report (CSV and Markdown per table)."""
    from cnnscope.api import spec_tables
    from cnnscope.report.render import render_text

    files: dict[str, str] = {}
    for table in tables if tables is not None else spec_tables():
        files[f"{table.key}.csv"] = render_text(table, "csv")
        files[f"{table.key}.md"] = render_text(table, "md")
    return files


def write_reports(folder: str | Path, tables: list[SpecTable] | None = None) -> list[Path]:
    """Write every spec report into ``folder`` (created if missing), atomically per file."""
    from cnnscope.fileio import write_text_atomic

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    return [write_text_atomic(target / name, text)
            for name, text in render_reports(tables).items()]
