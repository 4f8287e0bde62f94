"""Three invariants over every module of ``cnnscope``: no import circle, no private name taken
from another module, no module over 600 lines.

Every module is parsed with ``ast`` by the same scanner as the layer test (tests/test_layers.py):
imports inside functions and under ``if TYPE_CHECKING:`` count (a circle through a type-only
import is still a circle: the two modules cannot be read apart), relative imports are resolved.

- **Circles.** The module graph has an edge from a module to every cnnscope module it imports.
  An import of a package counts as an import of its ``__init__``; ``from pkg import sub``, where
  ``sub`` is a module, counts as importing both ``pkg`` and ``pkg.sub``. Every strongly connected
  component of more than one module is a circle, reported with the import lines inside it.
- **Private names.** ``from m import _x`` (not a dunder) where ``m`` is another cnnscope module,
  and ``m._x`` where ``m`` is a name bound to an imported cnnscope module. A name another module
  needs is public, or it moves to where it is used.
- **Size.** A module over ``MAX_LINES`` lines holds more than one job.

What is there today and is being removed is listed in ``ALLOWED``, one entry per violation. An
entry that no longer occurs fails the test too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import cnnscope
from tests.test_layers import import_statements, parsed

PACKAGE_DIR = Path(cnnscope.__file__).parent
MAX_LINES = 600

# Known violations, one entry each, to remove in issue 24 (other parts of it are removing them; the
# list is emptied when they are merged). Keys: "circle: a <-> b <-> c" (the modules of one circle,
# sorted), "private: importer -> module._name", "size: path/of/module.py".
ISSUE_24 = "to remove in issue 24"
ALLOWED: dict[str, str] = {
}


@dataclass(frozen=True)
class Module:
    name: str  # dotted: "cnnscope.zoo" for cnnscope/zoo/__init__.py
    path: Path
    root: Path  # the folder holding the package, for paths in messages

    @property
    def where(self) -> str:
        return self.path.relative_to(self.root).as_posix()


def package_modules(package_dir: Path) -> dict[str, Module]:
    """Every module of the package under ``package_dir``, by dotted name."""
    root = package_dir.parent
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = Module(".".join(parts), path, root)
    return found


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def import_edges(modules: dict[str, Module]) -> dict[str, dict[str, list[int]]]:
    """module -> {imported module: [lines]}, within the package, self-imports left out."""
    edges: dict[str, dict[str, list[int]]] = {}
    for module in modules.values():
        out = edges.setdefault(module.name, {})
        for line, target, names in import_statements(module.path, module.name):
            targets = [target] + [f"{target}.{a.name}" for a in names if f"{target}.{a.name}" in modules]
            for t in targets:
                if t in modules and t != module.name:
                    out.setdefault(t, []).append(line)
    return edges


def circles(modules: dict[str, Module]) -> dict[str, list[str]]:
    """"circle: a <-> b" -> the import lines that close it, for every strongly connected
    component of more than one module (Tarjan's algorithm, iterative)."""
    edges = import_edges(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    found = {}
    for component in components:
        lines = [f"{modules[a].where}:{line} imports {b}"
                 for a in component
                 for line, b in sorted((line, b) for b in edges[a] if b in component
                                       for line in edges[a][b])]
        found["circle: " + " <-> ".join(component)] = lines
    return found


def private_imports(modules: dict[str, Module]) -> dict[str, list[str]]:
    """"private: importer -> module._name" -> where, for every private name taken from another
    cnnscope module, by ``from m import _x`` or by ``m._x`` on an imported module."""
    found: dict[str, list[str]] = {}

    def add(importer: Module, line: int, target: str, name: str) -> None:
        if target != importer.name and is_private(name):
            found.setdefault(f"private: {importer.name} -> {target}.{name}", []).append(
                f"{importer.where}:{line}")

    for module in modules.values():
        bound: dict[str, str] = {}  # a name in this file -> the cnnscope module it stands for
        imports, attributes = [], []
        for node in ast.walk(parsed(module.path)):  # one walk of the tree for both kinds
            if isinstance(node, ast.Import):
                imports.append(node)
            elif isinstance(node, ast.Attribute):
                attributes.append(node)
        for line, target, names in import_statements(module.path, module.name):
            if target not in modules:
                continue
            for alias in names:
                if f"{target}.{alias.name}" in modules:  # a module, not a name: the file may use it
                    bound[alias.asname or alias.name] = f"{target}.{alias.name}"
                else:
                    add(module, line, target, alias.name)
        for node in imports:
            for alias in node.names:
                if alias.name in modules:  # "import a.b" binds a, "import a.b as m" binds m
                    top = alias.name.split(".")[0]
                    bound[alias.asname or top] = alias.name if alias.asname else top
        for node in attributes:
            chain = [node.attr]
            base = node.value
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if not isinstance(base, ast.Name) or base.id not in bound:
                continue
            # Follow the attributes through submodules; the first one that is no module is a
            # name of the last module reached.
            target = bound[base.id]
            for attr in reversed(chain):
                if f"{target}.{attr}" in modules:
                    target = f"{target}.{attr}"
                    continue
                add(module, node.lineno, target, attr)
                break
    return {key: sorted(set(where)) for key, where in found.items()}


def long_modules(modules: dict[str, Module], limit: int = MAX_LINES) -> dict[str, list[str]]:
    """"size: path" -> its line count, for every module over ``limit`` lines."""
    found = {}
    for module in modules.values():
        count = len(module.path.read_text().splitlines())
        if count > limit:
            found[f"size: {module.where}"] = [f"{count} lines, over {limit}"]
    return found


def violations(package_dir: Path) -> dict[str, list[str]]:
    modules = package_modules(package_dir)
    return {**circles(modules), **private_imports(modules), **long_modules(modules)}


def against_allowlist(found: dict[str, list[str]], allowed) -> tuple[list[str], list[str]]:
    """(new violations, each with its evidence; allowlist entries that no longer occur)."""
    new = [f"{key}\n    " + "\n    ".join(found[key]) for key in sorted(found) if key not in allowed]
    stale = sorted(key for key in allowed if key not in found)
    return new, stale


@pytest.fixture(scope="module")
def found() -> dict[str, list[str]]:
    return violations(PACKAGE_DIR)


def test_no_new_circle_private_import_or_long_module(found):
    new, _ = against_allowlist(found, ALLOWED)
    assert new == [], (
        "structure violations (break the circle, make the name public or move it, split the "
        "module):\n" + "\n".join(new))


def test_the_allowlist_only_shrinks(found):
    _, stale = against_allowlist(found, ALLOWED)
    assert stale == [], "no longer occur, remove from ALLOWED in tests/test_structure.py:\n" + "\n".join(stale)


def test_every_allowlist_entry_says_when_it_goes():
    assert set(ALLOWED.values()) <= {ISSUE_24}


# The checker itself, on a planted package: each check finds what it is for.


def plant(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "cnnscope"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_a_circle_through_a_lazy_relative_or_type_only_import_is_found(tmp_path):
    package = plant(tmp_path, {
        "a.py": "from cnnscope.b import f\n",
        "b.py": "def f():\n    from . import c\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cnnscope.a import g\n",
        "d.py": "import cnnscope.a\n",  # imports into the circle, is not part of it
    })
    assert circles(package_modules(package)) == {
        "circle: cnnscope.a <-> cnnscope.b <-> cnnscope.c": [
            "cnnscope/a.py:1 imports cnnscope.b",
            "cnnscope/b.py:2 imports cnnscope.c",
            "cnnscope/c.py:3 imports cnnscope.a",
        ]}


def test_a_package_import_is_an_import_of_its_init_and_from_pkg_import_sub_of_both(tmp_path):
    package = plant(tmp_path, {
        # The package's __init__ imports its registry, which reads the package: a circle.
        "lib/__init__.py": "from cnnscope.lib.core import f\n",
        "lib/core.py": "def f():\n    import cnnscope.lib as package\n",
        # "from cnnscope.zoo import registry" imports the module registry, not only the package.
        "zoo/__init__.py": "",
        "zoo/registry.py": "def get():\n    from cnnscope.zoo.index import MODULE_OF\n",
        "zoo/index.py": "from cnnscope.zoo import registry\n",
    })
    assert circles(package_modules(package)) == {
        "circle: cnnscope.lib <-> cnnscope.lib.core": [
            "cnnscope/lib/__init__.py:1 imports cnnscope.lib.core",
            "cnnscope/lib/core.py:2 imports cnnscope.lib",
        ],
        "circle: cnnscope.zoo.index <-> cnnscope.zoo.registry": [
            "cnnscope/zoo/index.py:1 imports cnnscope.zoo.registry",
            "cnnscope/zoo/registry.py:2 imports cnnscope.zoo.index",
        ],
    }


def test_private_names_taken_by_from_import_or_by_attribute_are_found(tmp_path):
    package = plant(tmp_path, {
        "a.py": "_hidden = 1\n__version__ = '1'\npublic = 2\n",
        "b.py": "from cnnscope.a import _hidden, public, __version__\n",
        "c.py": "import cnnscope.a as m\nx = m._hidden + m.public\n",
        "d.py": "def f():\n    from . import a\n    return a._hidden\n",
        "e.py": "import cnnscope.a\ny = cnnscope.a._hidden\n",
        "f.py": "_own = 1\nfrom cnnscope import f\nz = f._own\n",  # its own names are its own
        "g.py": "from cnnscope import a as other\nw = other._hidden\n",
    })
    assert private_imports(package_modules(package)) == {
        "private: cnnscope.b -> cnnscope.a._hidden": ["cnnscope/b.py:1"],
        "private: cnnscope.c -> cnnscope.a._hidden": ["cnnscope/c.py:2"],
        "private: cnnscope.d -> cnnscope.a._hidden": ["cnnscope/d.py:3"],
        "private: cnnscope.e -> cnnscope.a._hidden": ["cnnscope/e.py:2"],
        "private: cnnscope.g -> cnnscope.a._hidden": ["cnnscope/g.py:2"],
    }


def test_a_module_over_the_limit_is_found(tmp_path):
    package = plant(tmp_path, {"big.py": "x = 1\n" * (MAX_LINES + 1), "fits.py": "x = 1\n" * MAX_LINES})
    assert long_modules(package_modules(package)) == {
        "size: cnnscope/big.py": [f"{MAX_LINES + 1} lines, over {MAX_LINES}"]}


def test_an_entry_that_no_longer_occurs_fails_and_a_new_violation_fails():
    found = {"size: cnnscope/big.py": ["601 lines, over 600"]}
    new, stale = against_allowlist(found, {"size: cnnscope/gone.py": "to remove in issue 24"})
    assert new == ["size: cnnscope/big.py\n    601 lines, over 600"]
    assert stale == ["size: cnnscope/gone.py"]
    assert against_allowlist(found, {"size: cnnscope/big.py": "to remove in issue 24"}) == ([], [])


# ---------------------------------------------------------------------- shadowed exports


def exported_names_shadowed_by_submodules(package_dir: Path) -> list[str]:
    """Names a package exports (``__all__``, its lazy table ``_LAZY``) that are also the
    name of one of its submodules: importing that submodule anywhere replaces the exported
    function with the module (Python sets a package's attribute to each submodule it
    imports), so ``from pkg import name`` then depends on what was imported before."""
    found = []
    for init in sorted(package_dir.rglob("__init__.py")):
        folder = init.parent
        submodules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
        submodules |= {d.name for d in folder.iterdir() if (d / "__init__.py").exists()}
        exported: set[str] = set()
        for node in ast.parse(init.read_text(), filename=str(init)).body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = {t.id for t in targets if isinstance(t, ast.Name)}
                if names & {"__all__", "_LAZY"} and node.value is not None:
                    for const in ast.walk(node.value):
                        if isinstance(const, ast.Constant) and isinstance(const.value, str):
                            exported.add(const.value)
                    if isinstance(node.value, ast.Dict):  # _LAZY: only its keys are exported
                        exported -= {v.value for v in node.value.values
                                     if isinstance(v, ast.Constant)}
                        exported |= {k.value for k in node.value.keys
                                     if isinstance(k, ast.Constant)}
        rel = init.parent.relative_to(package_dir.parent).as_posix()
        found += [f"{rel}: exports {name!r}, also a submodule" for name in sorted(exported & submodules)]
    return found


def test_no_package_exports_the_name_of_its_own_submodule():
    assert exported_names_shadowed_by_submodules(PACKAGE_DIR) == []


def test_the_shadow_check_sees_a_planted_clash(tmp_path):
    package = tmp_path / "cnnscope" / "api"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('_LAZY = {"report_folder": "report_folder"}\n'
                                         '__all__ = ["analyze"]\n')
    (package / "report_folder.py").write_text("def report_folder(): ...\n")
    (package / "analyze_model.py").write_text("def analyze(): ...\n")
    assert exported_names_shadowed_by_submodules(tmp_path / "cnnscope") == [
        "cnnscope/api: exports 'report_folder', also a submodule"]
