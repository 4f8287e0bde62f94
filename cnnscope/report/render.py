"""The one way from a result to what it shows, picked by the result's type.

Each result type has one document function, in its own report module (the only place
that decides that result's columns and rows), registered for the type with
``cnnscope.results.document`` (``functools.singledispatch``); ``cnnscope.report.document``
prints any document as a table, CSV, JSON or Markdown. A result that is not a table (a
graph) registers ``cnnscope.results.render`` for its own formats instead.

Importing this module registers every renderer: the import list below is the registry
(``cnnscope.results`` loads it on the first ``document`` or ``render`` call). A new result
type: its document function in a module here, ``@document.register(TheType)``, and the
module in this list; ``tests/report/test_dispatch.py`` checks that every result type has
one.
"""

from __future__ import annotations

from typing import Any

# Every renderer, imported for its registrations (the order does not matter).
from cnnscope.report import (  # noqa: F401
    bench_render,
    compare_render,
    ddp_render,
    files,
    fvcore_render,
    graph_render,
    layers,
    memory_render,
    rf_render,
    shape_render,
    spec_render,
    zoo_render,
)
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


__all__ = ["Document", "document", "render", "render_table", "render_text"]
