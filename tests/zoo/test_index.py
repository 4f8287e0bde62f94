"""The name -> family-file index that lets one model import one file."""

import subprocess
import sys

from cnnscope.zoo import all_models
from cnnscope.zoo._index import MODULE_OF


def test_index_lists_every_model_and_the_file_that_registers_it():
    actual = {info.name: info.factory.__module__.rsplit(".", 1)[1] for info in all_models()}
    assert MODULE_OF == actual, "stale index: run python -m cnnscope.zoo._index"


def _zoo_modules_after(code: str) -> list[str]:
    probe = code + "\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith('cnnscope.zoo.') and not m.startswith('cnnscope.zoo._')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return eval(out.stdout.strip().splitlines()[-1])


def test_building_one_model_imports_only_its_family_file():
    assert _zoo_modules_after("from cnnscope.zoo import model_info; model_info('densenet121')") == \
        ["cnnscope.zoo.densenet"]


def test_listing_and_unknown_names_still_see_every_model():
    every = _zoo_modules_after("from cnnscope.zoo import list_models; list_models()")
    assert len(every) == len({m for m in MODULE_OF.values()})
    code = ("from cnnscope.zoo import model_info\n"
            "try:\n    model_info('resnet5')\nexcept Exception as e:\n    print(e.hint)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "resnet50" in out.stdout
