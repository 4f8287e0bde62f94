"""The committed spec reports (reports/spec) are what the code generates now.

Regenerates every report in memory and compares it with the committed file; a stale,
missing or extra file fails with the command that regenerates them.
"""

from __future__ import annotations

from pathlib import Path

REPORTS = Path(__file__).resolve().parents[1] / "reports" / "spec"
COMMAND = "cnnscope spec --all -o reports/spec"


# Not marked slow on purpose: a stale committed report must fail the default run. It
# traces 18 models on the meta device (a few seconds; the spec tests share the traces).
def test_committed_spec_reports_are_fresh():
    from cnnscope.cli.spec_reports import render_reports

    fresh = render_reports()
    committed = {p.name: p for p in REPORTS.glob("*")} if REPORTS.is_dir() else {}
    problems = []
    for name, text in fresh.items():
        path = committed.get(name)
        if path is None:
            problems.append(f"missing: reports/spec/{name}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"stale: reports/spec/{name}")
    problems += [f"not generated (delete it?): reports/spec/{n}" for n in committed if n not in fresh]
    assert not problems, ("spec reports are out of date:\n  " + "\n  ".join(problems)
                          + f"\nregenerate them from the repository root with:\n  {COMMAND}")
