"""What every result the API returns has in common: the result protocol and its enums.

A result (``ModelReport``, ``Comparison``, ``ShapeReport``, ``BenchResult`` ...) is a
frozen dataclass: its type says what it is, its fields are typed, ``to_dict()`` gives its
exact data (strict JSON: integers stay integers, no NaN), and ``document(result)`` turns
it into a format-neutral ``Document`` that one renderer per format prints.

The kinds and statuses are ``StrEnum``s: each member *is* its old string, so CSV, JSON
and tables print the same bytes, and ``r.kind == "module"`` still holds. This module sits
at the bottom of the package (it imports nothing of cnnscope), so trace, analysis and
bench records can all use it.
"""

from __future__ import annotations

from enum import StrEnum
from functools import singledispatch
from typing import Any, Callable, Protocol, runtime_checkable


class LayerKind(StrEnum):
    """What one traced record (``LayerRecord.kind``) or table row is."""

    MODULE = "module"  # a leaf torch.nn layer (Conv2d)
    FUNCTION = "function"  # an op called in a forward(): add, cat, matmul, interpolate
    SHAPE = "shape"  # a view/reshape/flatten: no cost, kept for the receptive field
    GROUP = "group"  # the sum of a module's layers (``--depth N``)


class MatchStatus(StrEnum):
    """How a paper's printed value compares with the computed one (spec tables)."""

    OK = "ok"  # equal at the printed precision
    NEAR = "near"  # within the tolerance of a rounding or a typo
    DIFFERS = "differs"


class FieldStatus(StrEnum):
    """What a layer's receptive field is along the input's spatial axes."""

    SPATIAL = "spatial"  # a finite window on every axis
    GLOBAL = "global"  # the whole input (global pooling, a linear layer)
    PARTIAL = "partial"  # global on some axes only
    UNKNOWN = "unknown"  # an op the analysis does not understand
    CONSTANT = "constant"  # depends on no input


class RunStatus(StrEnum):
    """How one benchmark row ended (``BenchRow.status``)."""

    OK = "ok"
    ERROR = "error"
    OOM = "oom"
    UNSUPPORTED = "unsupported"


@runtime_checkable
class Result(Protocol):
    """A result of the API: a frozen dataclass whose exact data is ``to_dict()``."""

    def to_dict(self) -> dict[str, Any]:
        """The exact data, JSON-able as is: exact integers, None for what is not known."""
        ...


# ---------------------------------------------------------------------- rendering by type
#
# Two generic functions pick a result's renderer by its type (``functools.singledispatch``,
# as torch's flop_counter picks a formula by op): ``document`` (the format-neutral
# ``Document`` of every table-shaped result: table, CSV, JSON, Markdown) and ``render``
# (a result as text in one format: by default its document's text; a graph registers its
# own, Mermaid and DOT). The renderers live in ``cnnscope.report``, above this module, and
# register themselves when imported (``@document.register(ModelReport)``); a module down
# here may not import them, so the package root, which is imported before any of its
# modules, hands over ``RENDERERS_LOADER`` (``cnnscope.report.render.load_renderers``).
# A type's renderers load on its first ``document`` or ``render``, never at import.

RENDERERS_LOADER: Callable[[type], None] | None = None  # set by the package root
_tried: set[type] = set()


def _renderers_loaded(result: Any) -> bool:
    """Load the renderers of ``result``'s type once; True when this call loaded them
    (dispatch again)."""
    kind = type(result)
    if kind in _tried or RENDERERS_LOADER is None:
        return False
    _tried.add(kind)
    RENDERERS_LOADER(kind)
    return True


class NoRenderer(TypeError):
    """A result type that no renderer is registered for: a bug of cnnscope, not the
    user's input (a new result type needs its document function)."""

    def __init__(self, result: Any, what: str) -> None:
        name = type(result).__name__
        super().__init__(
            f"no {what} for {name}: register one in cnnscope/report/ with "
            f"@cnnscope.results.{what}.register({name}), and list that module in "
            "RENDERERS of cnnscope/report/render.py")


@singledispatch
def document(result: Any, **options: Any) -> Any:
    """``result`` as a format-neutral ``cnnscope.report.document.Document`` (``options``:
    its type's own, e.g. ``top``); NoRenderer for a type that has no document function."""
    if _renderers_loaded(result):
        return document(result, **options)
    raise NoRenderer(result, "document")


@singledispatch
def render(result: Any, format: str, **options: Any) -> Any:
    """``result`` as text in ``format`` (csv, json, md, html: its document's; a graph:
    mermaid, md, dot, and svg, png, pdf as bytes); NoRenderer for a type with none."""
    if _renderers_loaded(result):
        return render(result, format, **options)
    raise NoRenderer(result, "render")


class Shown:
    """A result that Jupyter displays as its Markdown (``_repr_markdown_``) or HTML table
    (``_repr_html_``), both from the renderer of ``--format md``."""

    __slots__ = ()

    def _repr_markdown_(self) -> str | None:
        return render(self, "md")

    def _repr_html_(self) -> str | None:
        return render(self, "html")
