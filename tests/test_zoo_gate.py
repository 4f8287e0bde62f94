"""The committed lock of the whole zoo matches the code: cnnscope's own regression gate,
run as part of the default test command (what `cnnscope check reports/zoo.lock.json` does
in a user's CI)."""

from pathlib import Path

from cnnscope.api import check_lock
from cnnscope.testing import drift_table
from cnnscope.zoo import list_models

LOCK = Path(__file__).resolve().parents[1] / "reports" / "zoo.lock.json"


def test_every_zoo_model_matches_the_committed_lock():
    result = check_lock(LOCK)
    assert result.ok, drift_table(result) + "\n(if intended: cnnscope snapshot --zoo -o reports/zoo.lock.json)"
    assert sorted(result.checked) == sorted(list_models())  # every model, none left out
