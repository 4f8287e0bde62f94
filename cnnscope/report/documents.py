"""The one way from a result to what it shows: ``document(result, **options)``.

Each result type has one document function, in the report module named here (the only
place that decides that result's columns and rows); ``cnnscope.report.document`` prints
any document as a table, CSV, JSON or Markdown. The modules load on first use, so a
command imports only its own.
"""

from __future__ import annotations

import importlib
from typing import Any

from cnnscope.report.document import Document

# result class name -> the report module whose ``document(result, **options)`` shows it
# ("module:function" where the function has another name)
DOCUMENT_MODULES = {
    "ModelReport": "cnnscope.report.layers",
    "MemoryPlan": "cnnscope.report.memory_render",
    "ZooTable": "cnnscope.report.zoo_render",
    "Comparison": "cnnscope.report.compare_render",
    "CheckResult": "cnnscope.report.files:drift_document",
    "ShapeReport": "cnnscope.report.shape_render",
    "FvcoreCheck": "cnnscope.report.fvcore_render",
    "ReceptiveFieldReport": "cnnscope.report.rf_render",
    "BenchResult": "cnnscope.report.bench_render",  # a DDP or sharded one: ddp_render's
    "SpecTable": "cnnscope.report.spec_render",
    "SpecTables": "cnnscope.report.spec_render:tables_document",
}


def document(result: Any, **options: Any) -> Document:
    """``result`` as a format-neutral ``Document`` (``options``: that type's own, e.g. top)."""
    name = type(result).__name__
    try:
        module = DOCUMENT_MODULES[name]
    except KeyError:
        raise TypeError(f"no document function for {name}") from None
    module, _, function = module.partition(":")
    return getattr(importlib.import_module(module), function or "document")(result, **options)


def render_text(result: Any, format: str, **options: Any) -> str:
    """``result`` as CSV, JSON or Markdown text (``format``: csv, json or md)."""
    from cnnscope.report.document import render_text as text_of

    return text_of(document(result, **options), format)


def render_table(result: Any, console, *, wide: bool = False, explain: bool = False,
                 **options: Any) -> None:
    """``result`` as a table on ``console``, fitted to its width (``wide``: every column;
    ``explain``: the conventions in full under it)."""
    from cnnscope.report.document import render_table as print_document

    print_document(document(result, **options), console, wide=wide, explain=explain)
