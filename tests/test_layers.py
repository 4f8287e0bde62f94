"""Imports point down: the layer table below is the specification of the package's layering.

Every module of ``cnnscope`` is parsed with ``ast``; every ``import`` and ``from ... import``
counts, also those inside functions (a lazy import is fine for start-up speed, but only when it
points down). A module may import its own layer or a lower one, never a higher one; the two
siblings of layer 3, ``analysis`` and ``bench``, may not import each other. ``from cnnscope import
x`` imports the package root (the public facade, layer 6), so code inside the package imports the
module itself (``from cnnscope.thirdparty import ...``).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import cnnscope

PACKAGE_DIR = Path(cnnscope.__file__).parent

# Bottom to top. A module belongs to the longest prefix listed here.
LAYERS: dict[str, int] = {
    # 0 base: errors, files, running user code, the version, units, the result protocol
    "cnnscope.errors": 0,
    "cnnscope.fileio": 0,
    "cnnscope.usercode": 0,
    "cnnscope.version": 0,
    "cnnscope.units": 0,
    "cnnscope.literal": 0,
    "cnnscope.validate": 0,
    "cnnscope.printable": 0,
    "cnnscope.results": 0,
    "cnnscope.patches": 0,
    # 1 the models and the one forward pass that measures them
    "cnnscope.zoo": 1,
    "cnnscope.trace": 1,
    "cnnscope.ops": 1,  # the op registry: no trace, analysis, bench or report (see test below)
    # 2 a name or spec -> a built model
    "cnnscope.build": 2,
    "cnnscope.thirdparty": 2,
    "cnnscope.models": 2,
    # 3 what is derived from records, and timing (siblings, see SIBLINGS)
    "cnnscope.analysis": 3,
    "cnnscope.benchmark": 3,
    # 4 the one orchestration layer: resolve, build, trace, hand reports on
    "cnnscope.api": 4,
    # 5 renderers
    "cnnscope.report": 5,
    # 6 commands and the public facade
    "cnnscope.cli": 6,
    "cnnscope.testing": 6,
    "cnnscope.__main__": 6,
    "cnnscope": 6,
}

# Same layer, but neither may import the other.
SIBLINGS = {("cnnscope.analysis", "cnnscope.benchmark"), ("cnnscope.benchmark", "cnnscope.analysis")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _group(module: str) -> str | None:
    """The entry of LAYERS that ``module`` belongs to (the longest matching prefix)."""
    best = None
    for prefix in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best):
                best = prefix
    return best


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def parsed(path: Path) -> ast.Module:
    """The file's syntax tree, parsed once per process and version of the file (the layer,
    structure and patch scans all read the package; none may change the tree it gets)."""
    return _parsed(path, _stamp(path))


@functools.lru_cache(maxsize=None)
def _parsed(path: Path, stamp: tuple[int, int]) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def import_statements(path: Path, module: str) -> tuple[tuple[int, str, tuple[ast.alias, ...]], ...]:
    """(line, absolute module name, the names taken from it) of every import in the file.

    Nested ones (inside functions, under ``if TYPE_CHECKING:``) included; relative imports are
    resolved against ``module``'s package. ``import a.b`` takes no names (``()``); the scan of
    import circles and private names (tests/test_structure.py) reads the names (``ast.alias``:
    ``name`` and ``asname``) too.
    """
    return _import_statements(path, module, _stamp(path))


@functools.lru_cache(maxsize=None)
def _import_statements(path: Path, module: str, stamp: tuple[int, int]):
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name, tuple(node.names)))
    return tuple(found)


def _imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import of cnnscope in the file, nested ones included."""
    found = [(line, name) for line, name, _ in import_statements(path, module)]
    return [(line, name) for line, name in found if name == "cnnscope" or name.startswith("cnnscope.")]


def _modules() -> list[tuple[Path, str]]:
    return [(path, _module_name(path)) for path in sorted(PACKAGE_DIR.rglob("*.py"))]


def layer_violations() -> list[str]:
    problems = []
    for path, module in _modules():
        own = _group(module)
        for line, target in _imported_modules(path, module):
            other = _group(target)
            where = f"{module} ({path.relative_to(PACKAGE_DIR.parent)}:{line}) imports {target}"
            if other is None:
                problems.append(f"{where}: {target} is in no layer")
            elif LAYERS[other] > LAYERS[own]:
                problems.append(f"{where}: layer {LAYERS[other]} above layer {LAYERS[own]}")
            elif (own, other) in SIBLINGS:
                problems.append(f"{where}: {own} and {other} may not import each other")
    return problems


def test_every_module_has_a_layer():
    assert [module for _, module in _modules() if _group(module) is None] == []


def test_imports_point_down():
    problems = layer_violations()
    assert problems == [], "imports that climb a layer:\n" + "\n".join(problems)


def test_the_scan_sees_nested_and_relative_imports(tmp_path):
    # The checker itself: a lazy import inside a function and a relative import are found
    # and resolved, so a violation cannot hide in either form.
    source = tmp_path / "cnnscope" / "analysis" / "fake.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "def f():\n"
        "    from cnnscope.api import analyze\n"
        "    from ..report import units\n"
        "    from . import shapes\n"
        "    from cnnscope import thirdparty\n"
    )
    global PACKAGE_DIR
    saved, PACKAGE_DIR = PACKAGE_DIR, tmp_path / "cnnscope"
    try:
        found = _imported_modules(source, _module_name(source))
    finally:
        PACKAGE_DIR = saved
    assert found == [
        (2, "cnnscope.api"),
        (3, "cnnscope.report"),
        (4, "cnnscope.analysis"),
        (5, "cnnscope"),
    ]
    assert [LAYERS[_group(name)] for _, name in found] == [4, 5, 3, 6]


# What the analysis and timing layers are handed, never fetch: a name is resolved, a model
# built and traced by ``cnnscope.api`` only (the one orchestration layer), which passes
# down reports, sources that build themselves, or callables (``trace=analyze``).
NOT_BELOW_API = ("cnnscope.build", "cnnscope.models", "cnnscope.thirdparty",
                 "cnnscope.trace.tracer", "cnnscope.zoo")
HANDED_DOWN = ("cnnscope.analysis", "cnnscope.benchmark")


def orchestration_violations() -> list[str]:
    problems = []
    for path, module in _modules():
        if not any(module == p or module.startswith(p + ".") for p in HANDED_DOWN):
            continue
        for line, target in _imported_modules(path, module):
            banned = [b for b in NOT_BELOW_API if target == b or target.startswith(b + ".")]
            if banned:
                problems.append(f"{module} ({path.relative_to(PACKAGE_DIR.parent)}:{line}) "
                                f"imports {target}: resolving, building and tracing are the api's")
    return problems


def test_analysis_and_bench_do_not_resolve_build_or_trace():
    problems = orchestration_violations()
    assert problems == [], "\n".join(problems)


def test_the_orchestration_rule_sees_a_forbidden_import(tmp_path):
    # The rule itself: a lazy import of the zoo inside a benchmark function is found.
    source = tmp_path / "cnnscope" / "benchmark" / "fake.py"
    source.parent.mkdir(parents=True)
    source.write_text("def f():\n    from cnnscope.zoo import list_models\n"
                      "    from cnnscope.trace.records import ModelReport\n")
    global PACKAGE_DIR
    saved, PACKAGE_DIR = PACKAGE_DIR, tmp_path / "cnnscope"
    try:
        found = orchestration_violations()
    finally:
        PACKAGE_DIR = saved
    assert [p.split(" (")[0] for p in found] == ["cnnscope.benchmark.fake"]
    assert "imports cnnscope.zoo" in found[0]
