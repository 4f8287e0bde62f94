"""The one way from a result to what it shows, picked by the result's type.

Each result type has one document function, in its own report module (the only place
that decides that result's columns and rows), registered for the type with
``cnnscope.results.document`` (``functools.singledispatch``); ``cnnscope.report.document``
prints any document as a table, CSV, JSON or Markdown. A result that is not a table (a
graph) registers ``cnnscope.results.render`` for its own formats instead.

A renderer registers itself when its module is imported. ``cnnscope.results`` asks
``load_renderers(type)`` on the first ``document`` or ``render`` of a type it does not
know, which imports the renderers listed for the module that defines the type
(``RENDERERS``), or every renderer when none is listed: a command loads only its own
(all of them cost about 90 ms of CPU at every start). A new result type: its document
function in a module here, ``@document.register(TheType)``, and a line in ``RENDERERS``;
``tests/report/test_dispatch.py`` checks that every result type has both.
"""

from __future__ import annotations

from typing import Any, Callable

from cnnscope.report.document import Document
from cnnscope.report.document import render_table as print_document
from cnnscope.report.document import render_text as text_of
from cnnscope.results import document, render


@render.register(object)
def document_text(result: Any, format: str, **options: Any) -> str:
    """Any result that has a document, as CSV, JSON, Markdown (csv, json, md) or, for a
    notebook, HTML (html)."""
    return text_of(document(result, **options), format)


def render_text(result: Any, format: str, **options: Any) -> str:
    """``result`` as CSV, JSON or Markdown text (``format``: csv, json or md)."""
    return render(result, format, **options)


def render_table(result: Any, console, *, wide: bool = False, explain: bool = False,
                 **options: Any) -> None:
    """``result`` as a table on ``console``, fitted to its width (``wide``: every column;
    ``explain``: the conventions in full under it)."""
    print_document(document(result, **options), console, wide=wide, explain=explain)


# ---------------------------------------------------------------------- the registry


def _layers() -> None:
    from cnnscope.report import layers  # noqa: F401


def _memory() -> None:
    from cnnscope.report import memory_render  # noqa: F401


def _zoo() -> None:
    from cnnscope.report import zoo_render  # noqa: F401


def _compare() -> None:
    from cnnscope.report import compare_render  # noqa: F401


def _check() -> None:
    from cnnscope.report import files  # noqa: F401


def _shapes() -> None:
    from cnnscope.report import shape_render  # noqa: F401


def _fvcore() -> None:
    from cnnscope.report import fvcore_render  # noqa: F401


def _fields() -> None:
    from cnnscope.report import rf_render  # noqa: F401


def _bench() -> None:
    from cnnscope.report import bench_render, ddp_render  # noqa: F401


def _spec() -> None:
    from cnnscope.report import spec_render  # noqa: F401


def _graph() -> None:
    from cnnscope.report import graph_render  # noqa: F401


# The module that defines result types -> what imports their renderers.
RENDERERS: dict[str, Callable[[], None]] = {
    "cnnscope.trace.records": _layers,  # ModelReport
    "cnnscope.analysis.memory": _memory,  # MemoryPlan
    "cnnscope.analysis.zoo_table": _zoo,  # ZooTable
    "cnnscope.analysis.compare": _compare,  # Comparison
    "cnnscope.analysis.snapshot": _check,  # CheckResult
    "cnnscope.analysis.shapes": _shapes,  # ShapeReport
    "cnnscope.analysis.fvcore_check": _fvcore,  # FvcoreCheck
    "cnnscope.analysis.receptive_field": _fields,  # ReceptiveFieldReport
    "cnnscope.benchmark.records": _bench,  # BenchResult, DdpResult, ShardedResult
    "cnnscope.analysis.spec.common": _spec,  # SpecTable, SpecTables
    "cnnscope.analysis.graph": _graph,  # ModelGraph
}


def load_renderers(result_type: type) -> None:
    """Import the renderers of ``result_type`` (and of its bases); every renderer when
    none is listed for it (then ``document`` says it has none, if so)."""
    listed = [RENDERERS[c.__module__] for c in result_type.__mro__ if c.__module__ in RENDERERS]
    for load in listed or RENDERERS.values():
        load()


def load_all() -> None:
    """Import every renderer (a test that every result type has one)."""
    for load in RENDERERS.values():
        load()


__all__ = ["Document", "document", "load_all", "load_renderers", "render", "render_table",
           "render_text"]
