"""What every result the API returns has in common: the result protocol and its enums.

A result (``ModelReport``, ``Comparison``, ``ShapeReport``, ``BenchResult`` ...) is a
frozen dataclass: its type says what it is, its fields are typed, ``to_dict()`` gives its
exact data (strict JSON: integers stay integers, no NaN), and ``cnnscope.report.documents``
turns it into a format-neutral ``Document`` that one renderer per format prints.

The kinds and statuses are ``StrEnum``s: each member *is* its old string, so CSV, JSON
and tables print the same bytes, and ``r.kind == "module"`` still holds. This module sits
at the bottom of the package (it imports nothing of cnnscope), so trace, analysis and
bench records can all use it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


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


# How a result shows itself in a notebook: the same Document and renderer as
# ``--format md``. The renderers sit above this module (a result may not import them), so
# the package root, which imports first whatever a user imports, fills this in.
NOTEBOOK_RENDERER: Any = None  # (result, "md" | "html") -> str


class Shown:
    """A result that Jupyter displays as its Markdown (``_repr_markdown_``) or HTML table
    (``_repr_html_``), both from the renderer of ``--format md``."""

    __slots__ = ()

    def _repr_markdown_(self) -> str | None:
        return NOTEBOOK_RENDERER(self, "md") if NOTEBOOK_RENDERER else None

    def _repr_html_(self) -> str | None:
        return NOTEBOOK_RENDERER(self, "html") if NOTEBOOK_RENDERER else None
