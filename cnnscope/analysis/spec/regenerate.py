"""Regenerate the committed spec reports: ``python -m cnnscope.analysis.spec.regenerate [DIR]``.

Writes ``<table>.csv`` and ``<table>.md`` for every spec table into DIR (default: the
repository's ``reports/spec``). ``tests/test_reports_fresh.py`` renders the same texts
in memory and fails when a committed file differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cnnscope.analysis.spec import SpecTable, build_all

COMMAND = "python -m cnnscope.analysis.spec.regenerate"
DEFAULT_DIR = Path(__file__).resolve().parents[3] / "reports" / "spec"


def render_reports(tables: list[SpecTable] | None = None) -> dict[str, str]:
    """File name -> text of every committed spec report (CSV and Markdown per table)."""
    from cnnscope.report.spec_render import to_csv, to_markdown

    files: dict[str, str] = {}
    for table in tables if tables is not None else build_all():
        files[f"{table.key}.csv"] = to_csv(table)
        files[f"{table.key}.md"] = to_markdown(table, command=COMMAND)
    return files


def write_reports(folder: str | Path = DEFAULT_DIR,
                  tables: list[SpecTable] | None = None) -> list[Path]:
    """Write every spec report into ``folder`` (created if missing), atomically per file."""
    from cnnscope.report.io import write_text_atomic

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    return [write_text_atomic(target / name, text)
            for name, text in render_reports(tables).items()]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else DEFAULT_DIR
    for path in write_reports(folder):
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
