"""The name -> family-file index that lets one model import one file."""

import subprocess

import pytest

from cnnscope.zoo import all_models
from cnnscope.zoo._index import MODULE_OF


REGENERATE = "python tests/zoo/test_index.py"


def actual_index() -> dict[str, str]:
    """Model name -> the family file that registers it, from the registry itself."""
    return {info.name: info.factory.__module__.rsplit(".", 1)[1] for info in all_models()}


def test_index_lists_every_model_and_the_file_that_registers_it():
    assert MODULE_OF == actual_index(), f"stale index: run {REGENERATE}"


_FAMILIES = ("sorted(m for m in sys.modules if m.startswith('cnnscope.zoo.') "
             "and not m.startswith('cnnscope.zoo._'))")


def _fresh_process(python: str, code: str) -> list:
    """Run ``code`` in a process of its own (the import state is the subject; the warm
    interpreter, tests/warm.py, has imported torch and nothing of cnnscope); it prints one
    Python literal per line."""
    out = subprocess.run([python, "-c", "import sys\n" + code], capture_output=True,
                         text=True, check=True)
    return [eval(line) for line in out.stdout.strip().splitlines()]


@pytest.fixture(scope="module")
def one_model_then_an_unknown_name(warm_python):
    # One process for two questions, in this order: what building one model imports,
    # then whether an unknown name still sees every model for its suggestion.
    return _fresh_process(
        warm_python,
        "from cnnscope.errors import UnknownModelError\n"
        "from cnnscope.zoo import model_info\n"
        "model_info('densenet121')\n"
        f"print({_FAMILIES})\n"
        "try:\n    model_info('resnet5')\nexcept UnknownModelError as e:\n    print(repr(e.hint))\n"
        f"print({_FAMILIES})\n")


def test_building_one_model_imports_only_its_family_file(one_model_then_an_unknown_name):
    assert one_model_then_an_unknown_name[0] == ["cnnscope.zoo.densenet"]


def test_listing_and_unknown_names_still_see_every_model(one_model_then_an_unknown_name,
                                                        warm_python):
    every_family = len({m for m in MODULE_OF.values()})
    (listed,) = _fresh_process(warm_python, f"from cnnscope.zoo import list_models; list_models()\nprint({_FAMILIES})")
    assert len(listed) == every_family
    _, hint, after_unknown = one_model_then_an_unknown_name
    assert "resnet50" in hint
    assert len(after_unknown) == every_family


def write_index() -> None:
    """Rewrite the table in cnnscope/zoo/_index.py from the registry (the index is data only)."""
    import pathlib
    import re

    import cnnscope.zoo._index as index

    path = pathlib.Path(index.__file__)
    table = "MODULE_OF: dict[str, str] = {\n" + "".join(
        f"    {name!r}: {module!r},\n" for name, module in actual_index().items()) + "}\n"
    text = re.sub(r"MODULE_OF: dict\[str, str\] = \{.*?\n\}\n|MODULE_OF: dict\[str, str\] = \{\}\n",
                  lambda _: table, path.read_text(), count=1, flags=re.S)
    path.write_text(text)


if __name__ == "__main__":
    write_index()
