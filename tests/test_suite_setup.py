"""What tests/conftest.py sets up for the suite itself: the order files are given to the
workers in, and the garbage collector's state while tests run."""

import gc
from pathlib import Path
from types import SimpleNamespace

from tests import conftest

ROOT = Path(__file__).resolve().parent.parent


def test_every_file_named_longest_exists():
    # A renamed file would silently drop out of the order and end up last.
    missing = [path for path in conftest.LONGEST_FILES if not (ROOT / path).is_file()]
    assert missing == []


def test_listed_files_go_first_longest_first_then_by_number_of_tests_each_in_its_own_order():
    first, second = conftest.LONGEST_FILES[:2]
    names = ["tests/small.py::a", f"{second}::x", "tests/many.py::m1", f"{first}::y",
             "tests/many.py::m2", "tests/small.py::b", f"{second}::z", "tests/many.py::m3"]
    items = [SimpleNamespace(nodeid=name) for name in names]
    conftest.pytest_collection_modifyitems(items)
    assert [item.nodeid for item in items] == [
        f"{first}::y", f"{second}::x", f"{second}::z",
        "tests/many.py::m1", "tests/many.py::m2", "tests/many.py::m3",
        "tests/small.py::a", "tests/small.py::b"]


def test_while_tests_run_the_collector_is_on_and_nothing_is_frozen():
    # cnnscope ages a trace's objects only where the program froze none of its own
    # (cnnscope.trace.meta): a freeze left over from collection would switch that branch.
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
