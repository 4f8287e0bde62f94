"""Helpers for your own test suite: fail a test when a model's counts drift from a lock file.

    # tests/test_model_counts.py
    from cnnscope.testing import assert_matches_lock

    def test_model_counts_did_not_move():
        assert_matches_lock("cnnscope.lock.json")

Create the lock once with ``cnnscope snapshot mypkg.models:build -o cnnscope.lock.json``
and commit it; regenerate it when a change is meant to move the counts. The check runs
on the meta device: no weights, fast enough for every test run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from cnnscope.analysis.snapshot import CheckResult
from cnnscope.api import check_lock

__all__ = ["assert_matches_lock", "check_lock", "drift_table"]


def drift_table(result: CheckResult) -> str:
    """The drifts as plain text, one per line: model, field, old -> new (delta)."""
    from cnnscope.report.files import check_summary, drift_rows

    lines = [check_summary(result)]
    for model, field, old, new, delta in drift_rows(result, limit=None):
        lines.append(f"  {model}: {field}: {old} -> {new} ({delta})")
    lines.extend(f"  note: {n}" for n in result.notes)
    return "\n".join(lines)


def assert_matches_lock(path: str | Path, *, rtol: Mapping[str, float] | None = None,
                        models: Sequence[str] | None = None,
                        allow_modules: Sequence[str] = ()) -> CheckResult:
    """Re-trace the models of lock file ``path``; raise ``AssertionError`` listing any drift.

    ``rtol`` maps fields ("params", "trainable_params", "macs", "flops") to relative
    tolerances (default: every field exact). ``models`` checks only those specs.
    A missing or malformed lock file raises ``cnnscope.CnnscopeError`` (a setup error,
    not a drift). ``allow_modules`` names the packages whose ``package.module:factory``
    specs the lock may import (``mypkg``). Returns the ``CheckResult`` when everything
    matches.
    """
    result = check_lock(path, dict(rtol) if rtol else None, models, allow_modules)
    if not result.ok:
        raise AssertionError(drift_table(result))
    return result
