"""Receptive fields: which input pixels each unit of each layer can see.

For every traced record and every spatial axis of the input this module computes

* ``receptive_field`` r: the width, in input pixels, of the region one unit depends on
  (the theoretical field: padding counts, so it can exceed the input);
* ``effective_stride`` j (the "jump"): how far, in input pixels, the field moves from
  one unit to the next. Upsampling and transposed convolutions make it fractional
  (``fractions.Fraction``);
* ``effective_padding`` P: how far the first unit's field hangs over the top/left edge
  of the input. The first unit (index 0) sees input pixels ``-P .. -P + r0 - 1`` (the
  definition of Araujo, Norris and Sim, "Computing Receptive Fields of Convolutional
  Neural Networks", Distill 2019, and of torchvision-style calculators);
* ``centre``: the centre, in input pixels (pixel i has centre i), of the first unit's
  field on the unit grid ``centre + u * j``. With integer strides it is exactly
  ``-P + (r - 1) / 2``.

How it is computed. Per axis, a layer maps output unit ``u`` to the input units it
reads (its "taps": ``s*u - p + t*d`` for a convolution). The field of a unit is the
hull of the fields of its taps. Every operation here is periodic: the taps of unit
``u + Q`` are those of ``u`` shifted by ``S`` units, so a feature map's fields are
stored exactly as ``lo(u), hi(u)`` for one period of units plus a shift per period
(``AxisField``). For the usual integer-stride networks the period is 1 and this is the
textbook recurrence ``r += (k_eff - 1) * j; j *= s; P += p * j``. After an
upsampling (nearest, bilinear, transposed convolution) neighbouring units share or
overlap inputs unevenly, the period grows, and the numbers stay exact: ``r`` is the
largest field of any unit, ``j = shift / period`` and ``centre`` the unbiased grid
through the units' centres (individual units sit within ``jitter`` of it).

Merges (residual additions, Inception and DenseNet concatenations, gates) take the hull
of their inputs' fields, which is the branch with the largest field when the branches
are aligned. Branches are aligned when they have the same jump and the same centre;
any difference is reported as a warning on the merge, never averaged away.

Layers that see the whole input stop the analysis honestly: global pooling (adaptive
pooling to 1, a mean over the spatial axes, a pooling window as large as its map), a
flatten that merges the spatial axes into one dimension, fully connected layers and
matrix products. They are marked ``global`` and the summary (``final``) reports the
last spatial feature map on the way to the output. A spatial map that is multiplied by
(or added to) something computed from the whole input -- a squeeze-and-excitation
gate, the statistics of group or instance normalisation -- keeps its local field and
is flagged ``global_context``: its units also depend on every input pixel through a
per-channel factor.

Layout: the per-axis maths is ``rf_axis`` (``Window``, ``AxisField``); which rule each
operation follows is its ``RfRule`` in the op registry (``cnnscope.ops``), the rule's handler is
in ``rf_rules`` (``apply_rule``); this module walks the records and holds the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from cnnscope.analysis.rf_axis import (  # noqa: F401 - re-exported: the maths' public names
    CONSTANT,
    GLOBAL,
    UNKNOWN,
    AxisField,
    Window,
    bound_on_grid,
    merge_fields,
)
from cnnscope.analysis.rf_rules import SpatialState, RuleStep, apply_rule
from cnnscope.results import FieldStatus, LayerKind, Shown
from cnnscope.trace.records import MODEL_INPUT, ModelReport

# Definitions printed under every table and written into every file.
CONVENTION = (
    "receptive field: width in input pixels of the region a unit depends on (padding "
    "counted, so it may exceed the input). stride: distance in input pixels between the "
    "fields of neighbouring units (the jump; fractional after upsampling). padding: how far "
    "the first unit's field hangs over the top/left input edge (it spans -P .. -P+r-1). "
    "centre: centre of the first unit's field on the unit grid. global: the layer sees the "
    "whole input (global pooling, flatten, fully connected). +ctx: a local field that also "
    "depends on the whole input through a gate or normalisation statistics."
)

AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}

# Records that only copy data: never named as the "final" feature map.
_BOOKKEEPING = frozenset({"clone", "copy", "_to_copy", "to", "contiguous", "alias", "detach"})


# ---------------------------------------------------------------------- results


@dataclass(frozen=True)
class LayerField:
    """The receptive field of one record, per spatial axis of the input."""

    index: int
    name: str
    type: str
    kind: LayerKind
    output_shape: tuple[int, ...]
    axes: tuple[Any, ...]  # per input axis: AxisField, GLOBAL, UNKNOWN or CONSTANT
    global_context: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def status(self) -> FieldStatus:
        """spatial, global, partial (some axes global), unknown or constant."""
        kinds = {("spatial" if isinstance(a, AxisField) else a) for a in self.axes}
        if UNKNOWN in kinds:
            return FieldStatus.UNKNOWN
        if kinds == {"spatial"}:
            return FieldStatus.SPATIAL
        if kinds == {GLOBAL}:
            return FieldStatus.GLOBAL
        if kinds == {CONSTANT}:
            return FieldStatus.CONSTANT
        if kinds <= {GLOBAL, CONSTANT}:
            return FieldStatus.GLOBAL
        return FieldStatus.PARTIAL

    @property
    def is_spatial(self) -> bool:
        return all(isinstance(a, AxisField) for a in self.axes)

    def _per_axis(self, attr: str) -> tuple[Any, ...]:
        return tuple(getattr(a, attr) if isinstance(a, AxisField) else None for a in self.axes)

    @property
    def receptive_field(self) -> tuple[int | None, ...]:
        return self._per_axis("size")

    @property
    def receptive_field_min(self) -> tuple[int | None, ...]:
        """Smallest field of any unit (differs from the largest after upsampling)."""
        return self._per_axis("min_size")

    @property
    def effective_stride(self) -> tuple[Fraction | None, ...]:
        return self._per_axis("jump")

    @property
    def effective_padding(self) -> tuple[int | None, ...]:
        return self._per_axis("padding")

    @property
    def centre(self) -> tuple[Fraction | None, ...]:
        return self._per_axis("centre")

    @property
    def jitter(self) -> tuple[Fraction | None, ...]:
        return self._per_axis("jitter")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape),
            "status": self.status,
            "receptive_field": list(self.receptive_field),
            "effective_stride": [_num(v) for v in self.effective_stride],
            "effective_padding": list(self.effective_padding),
            "centre": [_num(v) for v in self.centre],
            "receptive_field_min": list(self.receptive_field_min),
            "global_context": self.global_context,
            "warnings": list(self.warnings),
        }


def _num(v: Fraction | int | None) -> int | float | None:
    """A Fraction as an int when whole, else a float (JSON has no fractions)."""
    if v is None:
        return None
    v = Fraction(v)
    return v.numerator if v.denominator == 1 else float(v)


@dataclass(frozen=True)
class ReceptiveFieldReport(Shown):
    """Receptive fields of every record of a trace, and of the last spatial feature map."""

    model: str
    input_size: tuple[int, ...]
    layers: tuple[LayerField, ...]
    final: LayerField | None
    axis_names: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    convention: str = CONVENTION

    def visible_layers(self) -> list[LayerField]:
        """Rows a table shows: everything but view/reshape bookkeeping."""
        return [f for f in self.layers if f.kind != "shape"]

    def by_name(self, name: str) -> LayerField:
        for f in self.layers:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        final = None
        if self.final is not None:
            f = self.final
            final = {"name": f.name, "output_shape": list(f.output_shape),
                     "receptive_field": list(f.receptive_field),
                     "effective_stride": [_num(v) for v in f.effective_stride],
                     "effective_padding": list(f.effective_padding),
                     "centre": [_num(v) for v in f.centre],
                     "receptive_field_min": list(f.receptive_field_min),
                     "global_context": f.global_context}
        return {
            "model": self.model,
            "input_size": list(self.input_size),
            "axes": list(self.axis_names),
            "convention": self.convention,
            "final": final,
            "warnings": list(self.warnings),
            "layers": [f.to_dict() for f in self.visible_layers()],
        }


# ---------------------------------------------------------------------- the walk

# ---------------------------------------------------------------------- the walk


def receptive_fields(report: ModelReport) -> ReceptiveFieldReport:
    """Walk the traced records in order and compute every layer's receptive field."""
    spatial = tuple(report.input_size[1:])
    n_axes = len(spatial)
    names = AXIS_NAMES.get(n_axes, tuple(f"axis{i}" for i in range(n_axes)))
    input_shape = (report.batch, *report.input_size)
    states: dict[int, SpatialState] = {
        MODEL_INPUT: SpatialState(tuple(range(2, 2 + n_axes)), tuple(AxisField.identity() for _ in spatial))
    }
    shapes: dict[int, tuple[int, ...]] = {MODEL_INPUT: input_shape}
    names_of: dict[int, str] = {MODEL_INPUT: "input"}
    out: list[LayerField] = []
    all_warnings: list[str] = []
    for r in report.layers:
        ins = [(i, states[i], shapes[i]) for i in r.inputs if i in states]
        try:
            step = apply_rule(r, ins, n_axes, names, names_of)
        except Exception as exc:  # one odd layer must not sink the whole analysis
            step = RuleStep(SpatialState((None,) * n_axes, (UNKNOWN,) * n_axes),
                         [f"not understood ({type(exc).__name__}: {exc})"])
        states[r.index] = step.state
        shapes[r.index] = tuple(r.output_shape)
        names_of[r.index] = r.name
        lf = LayerField(r.index, r.name, r.type, r.kind, tuple(r.output_shape), step.state.axes,
                        step.state.context, tuple(step.warnings))
        out.append(lf)
        all_warnings.extend(f"{r.name}: {w}" for w in step.warnings)
    final = _final(report, out)
    return ReceptiveFieldReport(report.model, tuple(report.input_size), tuple(out), final,
                                names, tuple(all_warnings))


def last_feature_map_rf(report: ModelReport) -> tuple[int, ...] | None:
    """Receptive field (per axis) of the last spatial feature map, or None."""
    final = receptive_fields(report).final
    return None if final is None else tuple(final.receptive_field)


def _final(report: ModelReport, fields: list[LayerField]) -> LayerField | None:
    """The last spatial feature map on the way to the model's last output.

    It is the map where the field stops: a spatial record whose consumers on the way to
    the output are all global (pooled, flattened). When several maps stop there (the
    columns of a FractalNet, each pooled before the join) the largest field is reported.
    """
    if not fields:
        return None
    by_index = {r.index: r for r in report.layers}
    ancestors: set[int] = set()
    todo = [report.layers[-1].index]
    while todo:
        i = todo.pop()
        if i in ancestors or i == MODEL_INPUT:
            continue
        ancestors.add(i)
        todo.extend(by_index[i].inputs)
    field_of = {f.index: f for f in fields}
    consumers: dict[int, list[int]] = {}
    for r in report.layers:
        if r.index in ancestors:
            for i in r.inputs:
                consumers.setdefault(i, []).append(r.index)

    def real(f: LayerField) -> bool:
        return f.is_spatial and f.kind != "shape" and f.type not in _BOOKKEEPING

    def stops_here(f: LayerField) -> bool:
        # Walk through views and copies: a map stops when no spatial layer reads it.
        todo, seen = list(consumers.get(f.index, [])), set()
        while todo:
            c = todo.pop()
            if c in seen:
                continue
            seen.add(c)
            g = field_of[c]
            if g.is_spatial:
                if real(g):
                    return False
                todo.extend(consumers.get(c, []))
        return True

    candidates = [f for f in fields if f.index in ancestors and real(f) and stops_here(f)]
    if not candidates:
        spatial = [f for f in fields if f.index in ancestors and real(f)]
        return spatial[-1] if spatial else None
    return max(candidates, key=lambda f: (max(v or 0 for v in f.receptive_field), f.index))
