"""What may follow the colon of a lock's spec: one identifier naming a function or an
nn.Module class defined in that file (or allowed module). A lock is data: it must never
steer what runs (``net.py:torch.serialization.os.system`` once ran the shell)."""

import json
import sys
import textwrap

import pytest

from cnnscope.cli.main import main
from cnnscope.errors import CnnscopeError, SpecRefusedError

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Running this file leaves IMPORTED; calling anything it names other than its factories
# leaves CALLED. Every refusal below is checked against both marks.
NET = """
    import os
    import pathlib
    import torch
    from torch import nn
    from torch.nn import Conv2d
    from os import system
    pathlib.Path(__file__).with_name("IMPORTED").write_text("yes")

    def _mark(*args, **kwargs):
        pathlib.Path(__file__).with_name("CALLED").write_text(repr(args))
        return nn.Identity()

    class Net(nn.Module):
        def __init__(self, width=4):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3)

        def forward(self, x):
            return self.conv(x)

    def build(width=4):
        return Net(width)

    build.input_size = Net.input_size = (3, 8, 8)

    class Holder:
        make = staticmethod(_mark)

    def reassigned():
        return Net()

    reassigned = _mark          # defined by def, then replaced: refused after import
    instance = Net()            # an instance, not a factory
    alias = _mark               # assigned, never defined under that name
"""

IMPORTED_NAMES = ["os", "pathlib", "torch", "nn", "Conv2d", "system"]


@pytest.fixture()
def project(tmp_path, capsys, monkeypatch):
    """A folder with net.py and a lock of net.py:build made by snapshot."""
    monkeypatch.chdir(tmp_path)  # were a refusal broken, the shell would write here
    (tmp_path / "net.py").write_text(textwrap.dedent(NET))
    lock = tmp_path / "cnnscope.lock.json"
    assert main(["snapshot", f"{tmp_path}/net.py:build", "-o", str(lock)]) == 0
    capsys.readouterr()
    (tmp_path / "IMPORTED").unlink()
    return tmp_path, lock


def with_spec(lock, spec, args=None):
    data = json.loads(lock.read_text())
    data["models"][0]["spec"] = spec
    if args is not None:
        data["models"][0]["args"] = args
    lock.write_text(json.dumps(data))


def refused(lock, capsys, *extra):
    code = main(["check", str(lock), *extra])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnscope: error: "), err
    return lines[0]


def test_the_issue_case_an_attribute_walk_to_the_shell_is_refused_before_the_file_runs(
        project, capsys):
    folder, lock = project
    with_spec(lock, "net.py:torch.serialization.os.system", {"command": "'touch PWNED'"})
    line = refused(lock, capsys)
    assert "after the colon comes one identifier" in line
    assert not (folder / "IMPORTED").exists() and not (folder / "PWNED").exists()
    with pytest.raises(CnnscopeError):  # the pytest helper goes through the same gate
        from cnnscope.testing import assert_matches_lock
        assert_matches_lock(lock)
    assert not (folder / "IMPORTED").exists()


@pytest.mark.parametrize("attr", [
    "Holder.make", "build.__globals__", "__builtins__", "__loader__", "__getattr__", "__init__",
    "", "bu ild", "1build", "class", "bu-ild", "ｂuild",
])
def test_chains_dunders_keywords_and_odd_text_are_refused_before_the_file_runs(
        project, capsys, attr):
    folder, lock = project
    with_spec(lock, f"net.py:{attr}")
    refused(lock, capsys)
    assert not (folder / "IMPORTED").exists()


@pytest.mark.parametrize("attr", IMPORTED_NAMES + ["alias", "instance", "missing"])
def test_a_name_the_file_does_not_define_by_def_or_class_is_refused_before_it_runs(
        project, capsys, attr):
    folder, lock = project
    with_spec(lock, f"net.py:{attr}")
    line = refused(lock, capsys)
    assert f"does not define {attr!r}" in line
    assert not (folder / "IMPORTED").exists()


def test_a_def_replaced_by_an_assignment_is_refused_after_import_and_never_called(
        project, capsys):
    folder, lock = project
    with_spec(lock, "net.py:reassigned")
    line = refused(lock, capsys)
    assert "'reassigned' is not a function or nn.Module class defined there" in line
    assert not (folder / "CALLED").exists()


def test_a_function_and_a_class_defined_in_the_file_pass(project, capsys):
    folder, lock = project
    assert main(["check", str(lock)]) == 0
    assert "OK: 1 model" in capsys.readouterr().out
    with_spec(lock, "net.py:Net")
    assert main(["check", str(lock)]) == 0
    assert "OK: 1 model" in capsys.readouterr().out


def test_a_typed_spec_keeps_its_meaning(project, capsys):
    """The user chose the code: attribute chains still resolve on the command line."""
    folder, _ = project
    assert main(["summary", f"{folder}/net.py:Holder.make", "--input", "3x8x8"]) == 0
    capsys.readouterr()
    assert (folder / "CALLED").exists()


def test_snapshot_refuses_a_spec_check_would_refuse(project, capsys):
    folder, _ = project
    code = main(["snapshot", f"{folder}/net.py:Holder.make", "-o", str(folder / "l2.json")])
    assert code == 2 and "after the colon comes one identifier" in capsys.readouterr().err
    assert not (folder / "l2.json").exists()


PKG_INIT = """
    import os
    from os import system
    from .models import build
"""
PKG_MODELS = """
    from torch import nn

    def build():
        return nn.Sequential(nn.Conv2d(3, 4, 3))

    build.input_size = (3, 8, 8)
"""


@pytest.fixture()
def package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pkg = tmp_path / "lockpkg_x"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(PKG_INIT))
    (pkg / "models.py").write_text(textwrap.dedent(PKG_MODELS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield pkg
    for name in [m for m in sys.modules if m.startswith("lockpkg_x")]:
        del sys.modules[name]


@pytest.mark.parametrize("spec, said", [
    ("lockpkg_x:os.system", "after the colon comes one identifier"),
    ("lockpkg_x:system", "'system' is not a function or nn.Module class defined there"),
    ("lockpkg_x:build", "'build' is not a function or nn.Module class defined there"),
    ("lockpkg_x.models:__dict__", "after the colon comes one identifier"),
    ("lockpkg_x.models:nn", "'nn' is not a function or nn.Module class defined there"),
])
def test_an_allowed_module_cannot_be_walked_out_of(tmp_path, package, capsys, spec, said):
    lock = tmp_path / "l.json"
    assert main(["snapshot", "lockpkg_x.models:build", "-o", str(lock)]) == 0
    capsys.readouterr()
    assert main(["check", str(lock), "--allow-module", "lockpkg_x"]) == 0
    capsys.readouterr()
    with_spec(lock, spec, {"command": "'touch PWNED'"} if "system" in spec else None)
    assert said in refused(lock, capsys, "--allow-module", "lockpkg_x")
    assert not (tmp_path / "PWNED").exists()


_ident = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_chains = st.lists(_ident, min_size=2, max_size=5).map(".".join)
_dunders = _ident.map(lambda s: f"__{s}__")
_imported = st.sampled_from(IMPORTED_NAMES)
_prefixed = st.tuples(_imported, st.lists(_ident, min_size=0, max_size=3)).map(
    lambda t: ".".join([t[0], *t[1]]))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(attr=st.one_of(_chains, _dunders, _imported, _prefixed))
def test_property_no_chain_dunder_or_imported_name_ever_runs_the_file(project, capsys, attr):
    folder, lock = project
    with_spec(lock, f"net.py:{attr}", {"command": "'touch PWNED'"})
    code = main(["check", str(lock)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert not (folder / "IMPORTED").exists() and not (folder / "PWNED").exists()


def test_the_refusal_is_a_spec_refused_error_through_the_api(project):
    from cnnscope.api import check_lock

    _, lock = project
    with_spec(lock, "net.py:system")
    with pytest.raises(SpecRefusedError):
        check_lock(lock)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(attr=st.one_of(_chains, _dunders, st.sampled_from(["os", "system", "build", "nn"]),
                      st.tuples(st.sampled_from(["os", "system", "models"]),
                                st.lists(_ident, min_size=1, max_size=3)).map(
                          lambda t: ".".join([t[0], *t[1]]))))
def test_property_an_allowed_package_cannot_be_walked_out_of(tmp_path_factory, attr):
    """``lockpkg_y:ATTR`` with --allow-module lockpkg_y: the package's __init__ only
    imports (os, system, build from .models); nothing after the colon may reach them."""
    import importlib

    root = tmp_path_factory.mktemp("pkgprop")
    pkg = root / "lockpkg_y"
    if not pkg.exists():
        pkg.mkdir()
        (pkg / "__init__.py").write_text(textwrap.dedent(PKG_INIT))
        (pkg / "models.py").write_text(textwrap.dedent(PKG_MODELS))
    sys.path.insert(0, str(root))
    try:
        importlib.invalidate_caches()
        from cnnscope.api import check_lock

        lock = root / "l.json"
        lock.write_text(json.dumps({"schema_version": 1, "models": [{
            "spec": f"lockpkg_y:{attr}", "args": {"command": repr(f"touch {root}/PWNED")},
            "input_size": [3, 8, 8], "batch": 1, "params": 1, "macs": 1}]}))
        with pytest.raises(SpecRefusedError):
            check_lock(lock, allow_modules=("lockpkg_y",))
        assert not (root / "PWNED").exists()
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith("lockpkg_y")]:
            del sys.modules[name]
