"""A lock file is data: it is validated before anything is built, it cannot make the gate
import code on its own say-so, and the gate passes only when every model traced equal."""

import json
import textwrap

import pytest

from cnnscope.analysis.lock_schema import MAX_LOCK_BYTES
from cnnscope.cli.main import main

# Importing this file leaves a mark: a refused spec must not even import it.
NET = """
    import pathlib
    pathlib.Path(__file__).with_name("IMPORTED").write_text("yes")
    from torch import nn

    def build():
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))

    build.input_size = (3, 8, 8)
"""


@pytest.fixture()
def lock(tmp_path, capsys):
    path = tmp_path / "cnnscope.lock.json"
    assert main(["snapshot", "lenet5", "-o", str(path)]) == 0
    capsys.readouterr()
    return path


def check(path, *extra, capsys):
    code = main(["check", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def edited(path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def set_field(key, value):
    def change(data):
        data["models"][0][key] = value
    return change


@pytest.mark.parametrize("change, field", [
    (set_field("batch", -1), ".batch = -1 is out of range"),
    (set_field("batch", 0), ".batch = 0 is out of range"),
    (set_field("batch", "1"), ".batch must be an integer, not a string"),
    (set_field("batch", True), ".batch must be an integer, not a boolean"),
    (set_field("params", 1.5), ".params must be an integer, not a number with a fraction"),
    (set_field("params", 2**63), ".params = 9223372036854775808 is out of range"),
    (set_field("macs", -7), ".macs = -7 is out of range"),
    (set_field("input_size", {"c": 3}), ".input_size must be a list of 1 to 5 sizes"),
    (set_field("input_size", [3, 0, 32]), ".input_size[1] = 0 is out of range"),
    (set_field("input_size", [3, 2**40, 32]), ".input_size[1] = 1099511627776 is out of range"),
    (set_field("input_size", [3, 32, 32, 1, 1, 1]), ".input_size must be a list of 1 to 5"),
    (set_field("output_shapes", {"a": 1}), ".output_shapes must be a list of shapes"),
    (set_field("layers", [1, 2]), ".layers must be an object"),
    (set_field("layers", {"conv": "many"}), ".layers['conv'] must be an integer"),
    (set_field("args", ["num_classes=10"]), ".args must map names to Python literal text"),
    (set_field("spec", ""), ".spec must be a model spec"),
    (set_field("spec", 7), ".spec must be a model spec"),
    (lambda d: d.__setitem__("models", []), "models is empty, so there is nothing to check"),
    (lambda d: d.__setitem__("models", {"lenet5": {}}), "models must be a list, not an object"),
    (lambda d: d["models"].__setitem__(0, "lenet5"), "models[0] must be an object, not a string"),
    (lambda d: d.__setitem__("schema_version", True), "schema version True"),
    (lambda d: d.__setitem__("torch_version", 2), "torch_version must be a string"),
])
def test_a_malformed_lock_is_one_line_naming_the_field_exit_2(lock, capsys, change, field):
    edited(lock, change)
    code, out, err = check(lock, capsys=capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnscope: error: ")
    assert field in lines[0]


@pytest.mark.parametrize("text, said", [
    ("[" * 100_000, "nested too deeply"),
    ('{"schema_version": 1, "models": [{"spec": "lenet5", "params": NaN}]}', "not strict JSON"),
    ('{"schema_version": 1, "models": [], "x": ' + "9" * 5000 + "}", "not strict JSON"),
    ("\udcff", "is not text"),
])
def test_hostile_json_is_one_line(tmp_path, capsys, text, said):
    path = tmp_path / "l.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    code, _, err = check(path, capsys=capsys)
    assert code == 2 and said in err and len(err.strip().splitlines()) == 1


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path, capsys):
    path = tmp_path / "l.json"
    with open(path, "wb") as fh:
        fh.truncate(MAX_LOCK_BYTES + 1)  # sparse: no disk used
    code, _, err = check(path, capsys=capsys)
    assert code == 2 and "larger than 64 MiB" in err


@pytest.mark.parametrize("spec, said", [
    ("os:system", "names module code 'os:system'"),
    ("subprocess:getoutput", "names module code 'subprocess:getoutput'"),
    ("../../etc/passwd:x", "outside its own folder"),
    ("../outside/net.py:build", "outside its own folder"),
    ("/etc/passwd.py:x", "by an absolute path"),
    ("~/net.py:build", "by an absolute path"),
])
def test_the_gate_never_imports_what_the_lock_alone_names(lock, capsys, monkeypatch, spec, said):
    import sys

    edited(lock, set_field("spec", spec))
    before = set(sys.modules)
    code, out, err = check(lock, capsys=capsys)
    assert code == 2 and out == "" and said in err
    assert not {m for m in set(sys.modules) - before if m.startswith(("subprocess", "cnnscope_user"))}


def test_a_file_inside_the_lock_folder_runs_but_one_reached_through_a_symlink_out_does_not(
        tmp_path, capsys):
    inside = tmp_path / "proj"
    (inside / "models").mkdir(parents=True)
    (inside / "models" / "net.py").write_text(textwrap.dedent(NET))
    lock = inside / "cnnscope.lock.json"
    assert main(["snapshot", f"{inside}/models/net.py:build", "-o", str(lock)]) == 0
    capsys.readouterr()
    # Recorded relative to the lock's folder, and checked from anywhere.
    assert json.loads(lock.read_text())["models"][0]["spec"] == "models/net.py:build"
    code, out, _ = check(lock, capsys=capsys)
    assert code == 0 and "OK: 1 model" in out
    # A symlink inside the tree that leads out of it is refused before any import.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "net.py").write_text(textwrap.dedent(NET))
    (inside / "escape").symlink_to(outside)
    edited(lock, set_field("spec", "escape/net.py:build"))
    code, _, err = check(lock, capsys=capsys)
    assert code == 2 and "leads outside its own folder" in err
    assert not (outside / "IMPORTED").exists()


def test_snapshot_refuses_a_model_file_outside_the_locks_folder(tmp_path, capsys):
    (tmp_path / "net.py").write_text(textwrap.dedent(NET))
    (tmp_path / "locks").mkdir()
    code = main(["snapshot", f"{tmp_path}/net.py:build", "-o", str(tmp_path / "locks" / "l.json")])
    assert code == 2 and "outside the lock file's folder" in capsys.readouterr().err
    assert not (tmp_path / "locks" / "l.json").exists()


def test_a_module_spec_runs_only_when_its_package_is_allowed(tmp_path, capsys, monkeypatch):
    pkg = tmp_path / "site" / "mypkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(textwrap.dedent(NET))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    lock = tmp_path / "l.json"
    assert main(["snapshot", "mypkg.models:build", "-o", str(lock)]) == 0
    (pkg / "IMPORTED").unlink()
    capsys.readouterr()
    code, _, err = check(lock, capsys=capsys)
    assert code == 2 and "--allow-module mypkg" in err
    assert not (pkg / "IMPORTED").exists()
    code, out, _ = check(lock, "--allow-module", "mypkg", capsys=capsys)
    assert code == 0 and "OK: 1 model" in out
    code, _, err = check(lock, "--allow-module", "mypk", capsys=capsys)  # a prefix is not a package
    assert code == 2


def test_a_model_that_no_longer_builds_fails_the_gate_with_exit_1(lock, capsys):
    edited(lock, set_field("spec", "no_such_model"))
    code, out, _ = check(lock, capsys=capsys)
    assert code == 1 and "fails now: unknown model 'no_such_model'" in out


@pytest.mark.parametrize("text", [
    "-" * 4000 + "1",                  # RecursionError in the parser
    "-" * 150 + "1",                   # parses, but nests past the bound
    "(" * 4000 + "1" + ")" * 4000,
    "[" * 1000 + "]" * 1000,
    "+" * 2000 + "~" * 2000 + "1",
])
def test_deeply_nested_lock_args_are_one_line_not_a_recursion_error(lock, capsys, text):
    assert len(text) <= 8192
    edited(lock, set_field("args", {"num_classes": text[:4096]}))
    code, out, err = check(lock, capsys=capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "args['num_classes'] is" in err and "Traceback" not in err


def test_literal_reads_what_snapshot_writes_and_bounds_the_depth():
    from cnnscope.literal import NotALiteral, literal

    for value in [10, -3, (16, 32), [1, [2, (3,)]], {"a": None}, "relu", 1.5, -(2**70), 1 + 2j]:
        assert literal(repr(value)) == value
    nested = "[" * 90 + "]" * 90  # 90 lists and their 90 Load contexts: within 100 levels
    assert literal(nested) == eval(nested)  # noqa: S307 - a literal written in the test
    with pytest.raises(NotALiteral, match="nested deeper than 100"):
        literal("[" * 101 + "]" * 101)
    with pytest.raises(NotALiteral):
        literal("__import__('os')")


@pytest.mark.parametrize("where, said", [
    ('{"schema_version": 1, "schema_version": 1, "models": []}', "'schema_version' twice"),
    ("MODEL_DUP_MACS", "'macs' twice"),
    ("MODEL_DUP_LAYER", "'conv1' twice"),
    ("MODEL_DUP_ARG", "'num_classes' twice"),
])
def test_a_key_given_twice_is_refused_naming_it(lock, capsys, where, said):
    text = lock.read_text()
    data = json.loads(text)
    m = data["models"][0]
    if where == "MODEL_DUP_MACS":  # a reviewer reads the first value, json keeps the last
        text = text.replace('"macs":', f'"macs": {m["macs"] + 1},\n  "macs":', 1)
    elif where == "MODEL_DUP_LAYER":
        first = next(iter(m["layers"]))
        text = text.replace(f'"{first}":', f'"{first}": 1,\n   "{first}":', 1)
        said = f"{first!r} twice"
    elif where == "MODEL_DUP_ARG":
        text = text.replace('"args": {}', '"args": {"num_classes": "10", "num_classes": "10"}', 1)
    else:
        text = where
    assert text != lock.read_text()
    lock.write_text(text)
    code, out, err = check(lock, capsys=capsys)
    assert code == 2 and out == "" and said in err and len(err.strip().splitlines()) == 1
