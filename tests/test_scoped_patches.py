"""Every global patch cnnscope makes is scoped: inside its context the patched object is
replaced, after it (also when the body raises) every original object is back, the very
same object. All of them are made through ``cnnscope.patches``, whose list
docs/architecture.md shows; these tests keep that list honest."""

import ast
import importlib
import os
import pkgutil
import signal
import socket
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

import pytest
import torch
import torch.hub
import torch.nn.functional as F
from torch import nn

import cnnscope
import cnnscope.patches as patches
from cnnscope.trace import attention, meta
from tests.test_layers import parsed


def _snapshot() -> dict:
    """Identity of every object some cnnscope context swaps out."""
    from torch.nn.modules.batchnorm import _NormBase
    from torch.nn.modules.conv import _ConvNd

    objects = {f"nn.init.{n}": getattr(nn.init, n) for n in meta.INIT_FUNCTIONS}
    objects.update({
        "Module.__setattr__": nn.Module.__dict__["__setattr__"],
        "ConvNd.reset_parameters": _ConvNd.__dict__["reset_parameters"],
        "Linear.reset_parameters": nn.Linear.__dict__["reset_parameters"],
        "NormBase.reset_parameters": _NormBase.__dict__["reset_parameters"],
        "F.scaled_dot_product_attention": F.scaled_dot_product_attention,
        "torch.hub.download_url_to_file": torch.hub.download_url_to_file,
        "torch.hub.load_state_dict_from_url": torch.hub.load_state_dict_from_url,
        "urllib.request.urlopen": urllib.request.urlopen,
        "socket.getaddrinfo": socket.getaddrinfo,
        "socket.socket.connect": socket.socket.connect,
        "socket.socket.connect_ex": socket.socket.connect_ex,
        "sys.stdout": sys.stdout,
    })
    return objects


def _changed(before: dict) -> set:
    after = _snapshot()
    return {k for k in before if after[k] is not before[k]}


def _scopes():
    from cnnscope.build import no_downloads, skip_init
    from cnnscope.usercode import stdout_to_stderr

    return {
        "building_on(meta)": (lambda: meta.building_on("meta"),
                              {"Module.__setattr__", "nn.init.kaiming_uniform_"}),
        "one_op_attention": (attention.one_op_attention, {"F.scaled_dot_product_attention"}),
        "skip_init": (skip_init, {"nn.init.kaiming_uniform_", "Linear.reset_parameters"}),
        "no_downloads": (lambda: no_downloads("a test"),
                         {"torch.hub.download_url_to_file", "torch.hub.load_state_dict_from_url",
                          "urllib.request.urlopen", "socket.getaddrinfo",
                          "socket.socket.connect"}),
        "stdout_to_stderr": (stdout_to_stderr, {"sys.stdout"}),
    }


@pytest.mark.parametrize("name", sorted(_scopes()))
@pytest.mark.parametrize("how", ["returns", "raises"])
def test_a_patch_holds_inside_its_scope_and_is_undone_after(name, how):
    context, patched = _scopes()[name]
    before = _snapshot()
    try:
        with context():
            inside = _changed(before)
            assert patched <= inside, f"{name} should replace {sorted(patched - inside)}"
            if how == "raises":
                raise KeyError("the body failed")
    except KeyError:
        pass
    assert _changed(before) == set(), f"{name} left patched: {sorted(_changed(before))}"


def test_stdout_to_stderr_restores_file_descriptor_1():
    from cnnscope.usercode import stdout_to_stderr

    before = os.fstat(1)
    with stdout_to_stderr():
        assert os.fstat(1).st_ino == os.fstat(2).st_ino
    after = os.fstat(1)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_nested_and_repeated_meta_builds_leave_nothing_patched():
    before = _snapshot()
    with meta.building_on("meta"):
        with meta.building_on("meta"):
            nn.Linear(3, 4)
        assert "Module.__setattr__" in _changed(before)  # the outer build still runs
    assert _changed(before) == set()


# ---------------------------------------------------------------------- the one patch module

PACKAGE_DIR = Path(cnnscope.__file__).parent
REPO = PACKAGE_DIR.parent


def _import_every_module() -> None:
    """Import every module of the package, so that every patch is implemented."""
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], "cnnscope."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)


def _implemented() -> dict:
    _import_every_module()
    return patches.implemented()


def _scoped_names() -> list[str]:
    return [p.name for p in patches.PATCHES if p.scope != patches.PROCESS]


def test_every_listed_patch_is_implemented_once_and_every_implemented_one_is_listed():
    implemented = _implemented()
    assert sorted(implemented) == sorted(_scoped_names())
    assert len({p.name for p in patches.PATCHES}) == len(patches.PATCHES)
    for p in patches.PATCHES:
        assert p.what and p.scope and p.why and p.where, p.name


def test_an_unlisted_patch_is_refused():
    with pytest.raises(KeyError, match="no patch named 'nameless'"):
        patches.scoped("nameless")
    with pytest.raises(ValueError, match="for the process"):
        patches.scoped("direct-exit")
    with pytest.raises(ValueError, match="is scoped"):
        patches.once("gc-paused", lambda: None)


def test_a_name_is_implemented_once():
    _implemented()
    with pytest.raises(RuntimeError, match="'skip-init' is implemented twice"):
        patches.scoped("skip-init")


def test_an_install_that_fails_half_way_leaves_nothing_installed():
    def fails(below):
        raise RuntimeError("cannot make the replacement")

    originals = _snapshot()
    removed = []
    patch = patches.ScopedPatch("skip-init", [patches.Swap(nn.init, "normal_", lambda b: None),
                                              patches.Swap(nn.init, "uniform_", fails)],
                                install=lambda: "state", remove=removed.append)
    with pytest.raises(RuntimeError, match="cannot make"):
        with patch:
            pass
    assert _changed(originals) == set()
    assert patch.users == 0 and removed == ["state"]


def _targets(patch) -> dict:
    """(owner, attr) -> the object stored there (or a marker when inherited), by identity."""
    missing = object()
    if isinstance(patch, patches.Setting):
        return {}
    return {(id(s.owner), s.attr): (s.owner, s.attr, vars(s.owner).get(s.attr, missing))
            for s in patch.swaps()}


def _state(patch):
    if isinstance(patch, patches.Setting):
        if patch.name == "launcher-log":  # its save() dups fd 2: compare where fd 2 points
            found = os.fstat(2)
            return found.st_dev, found.st_ino
        return patch.save()
    return patch.observe() if patch.observe is not None else None


def _same(before: dict) -> list[str]:
    """The targets of ``before`` whose stored object is not the very same any more."""
    missing_now = object()
    return [f"{getattr(owner, '__name__', owner)}.{attr}" for owner, attr, obj in before.values()
            if vars(owner).get(attr, missing_now) is not obj
            and not (obj is not None and type(obj) is object)]


_OTHER = {"cudnn-benchmark": True, "torch-threads": 1, "tf32": True,
          "launcher-log": os.path.join(tempfile.mkdtemp(prefix="cnnscope-test-"), "launcher.log")}


@pytest.mark.parametrize("how", ["returns", "raises"])
@pytest.mark.parametrize("name", _scoped_names())
def test_every_named_patch_holds_inside_and_restores_the_same_objects(name, how, monkeypatch):
    if name == "detection-caps":
        pytest.importorskip("torchvision")
    if name == "mplbackend-hidden":
        monkeypatch.setenv("MPLBACKEND", "a-backend-to-hide")
    patch = _implemented()[name]
    before, state = _targets(patch), _state(patch)
    entered = patch(_OTHER[name]) if isinstance(patch, patches.Setting) else patch
    with pytest.raises(KeyError) if how == "raises" else _nothing():
        with entered:
            for owner, attr, obj in before.values():
                assert vars(owner).get(attr) is not obj, f"{name} did not replace {attr}"
            if name == "launcher-signals":  # it puts back what torch's launcher changes
                signal.signal(signal.SIGTERM, lambda *a: None)
            elif name == "launcher-log":  # fd 2 is the log file, made afresh each time
                assert _state(patch) != state, "launcher-log left fd 2 where it was"
                os.unlink(_OTHER[name])
            elif patch.__class__ is patches.ScopedPatch and patch.observe is not None:
                assert _state(patch) != state, f"{name} changed nothing it observes"
            if how == "raises":
                raise KeyError("the body failed")
    assert _same(before) == [], f"{name} left patched: {_same(before)}"
    assert _state(patch) == state
    if isinstance(patch, patches.ScopedPatch):
        assert patch.users == 0


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _init_writes(tensor: torch.Tensor) -> bool:
    """Does ``nn.init.constant_`` (as installed now) write into a CPU tensor?"""
    tensor.fill_(7.0)
    nn.init.constant_(tensor, 1.0)
    return bool((tensor == 1.0).all())


def test_two_patches_of_nn_init_compose_in_any_order():
    from cnnscope.build import skip_init

    originals = _snapshot()
    shortcuts = _implemented()["meta-build-shortcuts"]
    t = torch.empty(3)
    # building_on first, skip_init second, building_on leaves first
    shortcuts.__enter__()
    skip = skip_init()
    skip.__enter__()
    assert not _init_writes(t)
    shortcuts.__exit__(None, None, None)
    assert not _init_writes(t), "skip_init's no-op was lost when building_on left"
    assert nn.Module.__dict__["__setattr__"] is originals["Module.__setattr__"]
    skip.__exit__(None, None, None)
    assert _changed(originals) == set()
    assert _init_writes(t)
    # skip_init first, building_on second, skip_init leaves first
    skip.__enter__()
    shortcuts.__enter__()
    assert not _init_writes(t)
    skip.__exit__(None, None, None)
    assert _init_writes(t), "building_on still leaves CPU tensors to the real init"
    assert nn.init.constant_(torch.empty(2, device="meta"), 1.0).is_meta
    assert nn.init.constant_ is not originals["nn.init.constant_"]
    shortcuts.__exit__(None, None, None)
    assert _changed(originals) == set()


def test_interleaved_builds_in_two_threads_see_a_consistent_state_and_restore_the_originals():
    """One thread builds on meta while another builds on the CPU without init, their
    entries and exits interleaved step by step (A in, B in, A out, B out, and the other
    way round), then both in a loop."""
    from cnnscope.build import skip_init

    originals = _snapshot()
    order = threading.Condition()
    turn = [0]
    seen: list[str] = []

    def step(n: int) -> None:
        with order:
            order.wait_for(lambda: turn[0] == n, timeout=10)
            turn[0] += 1
            order.notify_all()

    def meta_builder(enter: int, leave: int):
        step(enter)
        with meta.building_on("meta"):
            step(enter + 1)
            step(leave)
        step(leave + 1)

    def cpu_builder(enter: int, check: int, leave: int):
        t = torch.empty(3)
        step(enter)
        with skip_init():
            step(enter + 1)
            step(check)
            if _init_writes(t):
                seen.append("skip_init undone while its build ran")
            step(check + 1)
            step(leave)
        step(leave + 1)

    for a_in, b_in, a_out, check, b_out in ((0, 2, 4, 6, 8), (2, 0, 6, 4, 8)):
        turn[0] = 0
        a = threading.Thread(target=meta_builder, args=(a_in, a_out))
        b = threading.Thread(target=cpu_builder, args=(b_in, check, b_out))
        a.start()
        b.start()
        a.join(20)
        b.join(20)
        assert turn[0] == 10, "the threads did not take their turns"
        assert seen == []
        assert _changed(originals) == set()

    def loop(context):
        for _ in range(200):
            with context():
                nn.Linear(2, 2)

    threads = [threading.Thread(target=loop, args=(c,))
               for c in (lambda: meta.building_on("meta"), skip_init) * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert _changed(originals) == set()


def test_a_setting_nested_unwinds_in_order():
    from cnnscope.benchmark.runner import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        with torch_threads(2):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_the_process_changes_are_listed_and_made_through_the_module():
    _import_every_module()
    if "torch._dynamo" not in sys.modules:
        assert "dynamo-cache" in patches.made_for_process()
    listed = {p.name for p in patches.PATCHES if p.scope == patches.PROCESS}
    assert set(patches.made_for_process()) <= listed
    assert {"cnnscope-op-library", "dynamo-cache", "direct-exit", "objects-aged"} <= listed


def test_the_gc_is_paused_once_for_nested_users_and_resumed_after_the_last():
    import gc

    assert gc.isenabled()
    with meta.paused_gc():
        from cnnscope.benchmark.runner import no_gc

        with no_gc():
            assert not gc.isenabled()
        assert not gc.isenabled(), "the inner user resumed the collector of the outer one"
    assert gc.isenabled()


def test_the_sigint_handler_is_marked_and_put_back():
    from cnnscope.usercode import interrupts_marked

    before = signal.getsignal(signal.SIGINT)
    with interrupts_marked():
        with interrupts_marked():
            assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before


# ---------------------------------------------------------------------- nothing patches elsewhere

# Calls that change torch, the standard library or the process (dotted, after imports are
# resolved: ``from torch import nn`` makes ``nn.init`` ``torch.nn.init``).
_CHANGING_CALLS = {
    "os._exit", "os.dup2", "os.putenv", "os.unsetenv", "os.environ.pop", "os.environ.update",
    "os.environ.setdefault", "os.environ.clear", "os.environ.__setitem__",
    "signal.signal", "gc.disable", "gc.enable", "gc.freeze", "gc.unfreeze", "gc.set_threshold",
    "sys.setrecursionlimit", "sys.setswitchinterval", "torch.set_num_threads",
    "torch.set_num_interop_threads", "torch.library.Library", "torch.set_default_device",
    "torch.set_default_dtype", "torch.use_deterministic_algorithms",
    "sys.path.insert", "sys.path.append", "sys.path.remove", "sys.modules.pop",
}

# Where patching outside cnnscope/patches.py is allowed, and why: (file, line text).
ALLOWED = {
    ("cnnscope/models.py", "sys.modules[name] = module  # dataclasses and pickling look their "
     "module up here"): "importing a model file the user named, as `import` does",
    ("cnnscope/models.py", "sys.path.insert(0, str(path.parent))"):
        "the user's model file imports its siblings while it is imported, as when it runs",
    ("cnnscope/models.py", "sys.path.remove(str(path.parent))"): "the line above, undone",
    ("cnnscope/models.py", "sys.modules.pop(name, None)"): "a model file that failed to import",
}


def _imported_names(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted module or object it was imported as."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(node: ast.AST, imported: dict[str, str]) -> str | None:
    """``a.b.c`` with ``a`` resolved through the imports, or None when ``a`` is not imported."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in imported:
        return None
    return ".".join([imported[node.id], *reversed(parts)])


def _foreign(dotted: str | None) -> bool:
    """Is ``dotted`` an object of another package (torch, the standard library...)?
    cnnscope's own modules keep their own state (caches, registries)."""
    return dotted is not None and dotted.split(".")[0] != "cnnscope"


def _through_patches(tree: ast.AST, imported: dict[str, str]) -> tuple[set[str], set[int]]:
    """The functions (with what they call, in the same module) and lambdas handed to
    ``cnnscope.patches``: the hooks of a listed patch, allowed to make its change."""
    names, lambdas = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (_dotted(node.func, imported) or "").startswith(
                "cnnscope.patches."):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                for sub in ast.walk(arg):
                    if isinstance(sub, ast.Name):
                        names.add(sub.id)
                    elif isinstance(sub, ast.Lambda):
                        lambdas.add(id(sub))
    defs = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    todo = [n for n in names if n in defs]
    while todo:  # what a hook calls in its own module is part of the hook
        for sub in ast.walk(defs[todo.pop()]):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) \
                    and sub.func.id in defs and sub.func.id not in names:
                names.add(sub.func.id)
                todo.append(sub.func.id)
    return names & set(defs), lambdas


def _patching_lines(path: Path) -> list[tuple[int, str]]:
    """(line, what) for each change to an imported module, a class or the process in ``path``
    that is not made through cnnscope.patches."""
    tree = parsed(path)  # shared with the layer and structure scans (tests/test_layers.py)
    imported = _imported_names(tree)
    hooks, hook_lambdas = _through_patches(tree, imported)
    found = []

    def visit(node: ast.AST, allowed: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            allowed = allowed or node.name in hooks
        elif isinstance(node, ast.Lambda):
            allowed = allowed or id(node) in hook_lambdas
        if not allowed:
            found.extend(_changes(node, imported))
        for child in ast.iter_child_nodes(node):
            visit(child, allowed)

    visit(tree, False)
    return found


def _changes(node: ast.AST, imported: dict[str, str]) -> list[tuple[int, str]]:
    targets = []
    if isinstance(node, (ast.Assign, ast.Delete)):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    out = []
    while targets:
        t = targets.pop()
        if isinstance(t, (ast.Tuple, ast.List)):
            targets.extend(t.elts)
        elif isinstance(t, ast.Starred):
            targets.append(t.value)
        elif isinstance(t, ast.Attribute) and t.attr == "__class__":
            out.append((node.lineno, "assigns __class__"))
        elif isinstance(t, ast.Attribute) and _foreign(_dotted(t, imported)):
            out.append((node.lineno, f"assigns {_dotted(t, imported)}"))
        elif isinstance(t, ast.Subscript) and _foreign(_dotted(t.value, imported)):
            out.append((node.lineno, f"assigns an item of {_dotted(t.value, imported)}"))
    if isinstance(node, ast.Call):
        name = _dotted(node.func, imported)
        if name in _CHANGING_CALLS:
            out.append((node.lineno, f"calls {name}"))
        elif isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") \
                and node.args and _foreign(_dotted(node.args[0], imported)):
            out.append((node.lineno, f"{node.func.id} on {_dotted(node.args[0], imported)}"))
    return out


def test_nothing_in_cnnscope_patches_torch_or_the_standard_library_outside_patches_py():
    """Every change to torch, the standard library or the process goes through
    cnnscope.patches: made there, or in a hook handed to it (and listed in PATCHES)."""
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel == "cnnscope/patches.py":
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for lineno, what in _patching_lines(path):
            if (rel, lines[lineno - 1].strip()) not in ALLOWED:
                found.append(f"{rel}:{lineno}: {what}: {lines[lineno - 1].strip()}")
    assert found == [], ("patch through cnnscope.patches (a named, listed patch), not directly:\n"
                         + "\n".join(found))


@pytest.mark.parametrize("code", [
    "import torch\ntorch.nn.init.kaiming_uniform_ = None",
    "from torch import nn\nsetattr(nn.init, 'normal_', None)",
    "import torch.nn.functional as F\nF.relu = None",
    "import sys\nsys.stdout = sys.stderr",
    "import socket\nsocket.socket.connect = None",
    "import gc\ndef f():\n    gc.disable()",
    "import os\nos._exit(0)",
    "import os\nos.environ['X'] = '1'",
    "import signal\nsignal.signal(signal.SIGINT, None)",
    "import torch\ntorch.backends.cudnn.benchmark = True",
    "x.__class__ = int",
    "import urllib.request\nurllib.request.urlopen = None",
])
def test_the_scan_finds_a_patch_made_directly(code, tmp_path):
    path = tmp_path / "m.py"
    path.write_text(code)
    assert _patching_lines(path), code


def test_the_scan_allows_a_hook_handed_to_cnnscope_patches(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import gc\nimport cnnscope.patches as patches\n"
                    "def _off():\n    _really_off()\n"
                    "def _really_off():\n    gc.disable()\n"
                    "P = patches.scoped('gc-paused', install=_off, remove=lambda s: gc.enable())\n")
    assert _patching_lines(path) == []


# ---------------------------------------------------------------------- the docs table


def test_the_docs_table_of_patches_is_the_generated_one():
    page = (REPO / patches.DOCS_PAGE).read_text(encoding="utf-8")
    assert patches.BEGIN in page and patches.END in page, (
        f"{patches.DOCS_PAGE} lost its {patches.BEGIN} ... {patches.END} markers")
    assert patches.with_table(page) == page, (
        f"the table of patches in {patches.DOCS_PAGE} is not the list in cnnscope/patches.py; "
        f"regenerate it: {patches.REGENERATE}")


def test_the_table_has_a_row_per_patch_with_its_name_scope_and_reason():
    table = patches.markdown_table().splitlines()
    assert len(table) == 2 + len(patches.PATCHES)
    for row, p in zip(table[2:], patches.PATCHES):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells == [f"`{p.name}`", p.what, p.scope, p.why, p.where]
