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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import floor, gcd, prod
from typing import Any, Iterable, Sequence

from cnnscope.trace.formulas import ELEMENTWISE_OPS
from cnnscope.trace.records import LayerRecord, ModelReport

MODEL_INPUT = -1

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

# Per-axis states other than an AxisField.
GLOBAL = "global"  # every unit depends on the whole input along this axis
UNKNOWN = "unknown"  # an operation this analysis does not understand
CONSTANT = "constant"  # depends on no input at all (ignored by merges)

# Leaf torch.nn layers that act on each spatial position separately.
POINTWISE_MODULES = frozenset({
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LazyBatchNorm1d",
    "LazyBatchNorm2d", "LazyBatchNorm3d", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU",
    "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh", "Hardtanh",
    "Hardswish", "Hardsigmoid", "Softplus", "Softsign", "Softshrink", "Hardshrink",
    "Tanhshrink", "Threshold", "LogSigmoid", "GLU", "Dropout", "Dropout1d", "Dropout2d",
    "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "Identity", "LocalResponseNorm",
    "CrossMapLRN2d", "ChannelShuffle", "Softmax2d",
})
# Layers whose output at a position also depends on statistics of the whole map.
CONTEXT_MODULES = frozenset({
    "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LazyInstanceNorm1d",
    "LazyInstanceNorm2d", "LazyInstanceNorm3d",
})
# Ops that move or convert data element by element.
POINTWISE_OPS = frozenset(ELEMENTWISE_OPS) | frozenset({
    "clone", "copy", "_to_copy", "to", "contiguous", "alias", "detach", "dropout",
    "feature_dropout", "alpha_dropout", "native_dropout", "masked_fill", "fill",
    "zeros_like", "ones_like", "empty_like", "full_like", "lift_fresh_copy",
    "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "batch_norm", "cudnn_batch_norm", "_batch_norm_impl_index", "channel_shuffle",
    "split", "split_with_sizes", "chunk", "unbind",
})
CONTEXT_OPS = frozenset({"native_group_norm", "instance_norm"})
SOFTMAX_OPS = frozenset({"_softmax", "softmax", "_log_softmax", "log_softmax", "_safe_softmax", "Softmax",
                         "LogSoftmax", "Softmin"})
REDUCTION_OPS = frozenset({"mean", "sum", "amax", "amin", "max", "min", "prod", "std", "var",
                           "std_mean", "var_mean", "logsumexp", "argmax", "argmin", "any",
                           "all", "norm", "linalg_vector_norm", "frobenius_norm"})
LINEAR_OPS = frozenset({"Linear", "Bilinear", "LazyLinear", "linear", "addmm", "mm"})
MATMUL_OPS = frozenset({"bmm", "baddbmm", "addbmm", "matmul", "einsum", "einsum_bmm",
                        "_scaled_dot_product_flash_attention",
                        "_scaled_dot_product_efficient_attention",
                        "scaled_dot_product_attention", "MultiheadAttention",
                        "_scaled_dot_product_flash_attention_for_cpu",
                        "_scaled_dot_product_cudnn_attention",
                        "_scaled_dot_product_fused_attention_overrideable",
                        "_native_multi_head_attention"})
UPSAMPLE_MODULES = frozenset({"Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"})
PAD_MODULES = frozenset({"ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d",
                         "ConstantPad2d", "ConstantPad3d", "ReflectionPad1d",
                         "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d",
                         "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d",
                         "CircularPad2d", "CircularPad3d", "reflection_pad1d",
                         "reflection_pad2d", "reflection_pad3d", "replication_pad1d",
                         "replication_pad2d", "replication_pad3d", "pad"})
# Records that only copy data: never named as the "final" feature map.
_BOOKKEEPING = frozenset({"clone", "copy", "_to_copy", "to", "contiguous", "alias", "detach"})


# ---------------------------------------------------------------------- one axis


@dataclass(frozen=True)
class Window:
    """Which input units each output unit of a layer reads, along one axis.

    Output unit ``u = m * period + q`` reads ``taps[q] + m * shift``.
    """

    period: int
    shift: int
    taps: tuple[tuple[int, ...], ...]

    @classmethod
    def conv(cls, k: int, s: int = 1, p: int = 0, d: int = 1) -> "Window":
        """Convolution or pooling: unit u reads s*u - p + t*d, t = 0..k-1."""
        return cls(1, s, (tuple(-p + t * d for t in range(k)),))

    @classmethod
    def transposed(cls, k: int, s: int = 1, p: int = 0, d: int = 1) -> "Window":
        """Transposed convolution: output o gets input i where o = s*i - p + t*d."""
        taps = []
        for q in range(s):
            taps.append(tuple(sorted({(q + p - t * d) // s for t in range(k)
                                      if (q + p - t * d) % s == 0})))
        return cls(s, 1, tuple(taps))

    @classmethod
    def resample(cls, n_in: int, n_out: int, mode: str, align_corners: bool = False) -> "Window":
        """Interpolation from n_in to n_out units (PyTorch's source-index rules).

        nearest: src = floor(o * n_in / n_out). Linear modes with align_corners=False:
        src = (o + 0.5) * n_in / n_out - 0.5, reading floor(src) and floor(src) + 1
        (bicubic: floor(src) - 1 .. floor(src) + 2); an exact integer src reads one unit.
        The clamping PyTorch applies at the border is an edge effect, like padding, and
        is not part of the theoretical field.
        """
        if align_corners and n_out > 1:
            ratio = Fraction(n_in - 1, n_out - 1)
            offset = Fraction(0)
        else:
            ratio = Fraction(n_in, n_out)
            offset = Fraction(0) if mode in ("nearest", "nearest-exact") else (ratio - 1) / 2
        period = ratio.denominator
        shift = ratio.numerator
        taps = []
        for o in range(period):
            if mode in ("nearest", "nearest-exact", "area"):
                if mode == "nearest-exact":
                    src = floor((o + Fraction(1, 2)) * ratio)
                else:
                    src = floor(o * ratio)
                taps.append((src,))
                continue
            x = o * ratio + offset
            lo = floor(x)
            if x == lo:
                taps.append((lo,))
            elif mode == "bicubic":
                taps.append((lo - 1, lo, lo + 1, lo + 2))
            else:  # linear, bilinear, trilinear
                taps.append((lo, lo + 1))
        return cls(period, shift, tuple(taps))

    @classmethod
    def adaptive(cls, n_in: int, n_out: int) -> "Window":
        """Adaptive pooling: bin i covers floor(i*n/m) .. ceil((i+1)*n/m) - 1."""
        g = gcd(n_in, n_out)
        period, shift = n_out // g, n_in // g
        taps = []
        for i in range(period):
            a = (i * n_in) // n_out
            b = -((-(i + 1) * n_in) // n_out)
            taps.append(tuple(range(a, b)))
        return cls(period, shift, tuple(taps))

    @classmethod
    def offset(cls, start: int, step: int = 1) -> "Window":
        """A crop, a pad (negative start) or a strided slice: unit u reads start + step*u."""
        return cls(1, step, ((start,),))


@dataclass(frozen=True)
class AxisField:
    """The exact fields of every unit of a feature map along one axis.

    Unit ``u = m * period + q`` sees input pixels ``lo[q] + m*shift .. hi[q] + m*shift``.
    """

    period: int
    shift: int
    lo: tuple[int, ...]
    hi: tuple[int, ...]

    @classmethod
    def identity(cls) -> "AxisField":
        """The model input: pixel u sees itself."""
        return cls(1, 1, (0,), (0,))

    def lo_at(self, u: int) -> int:
        m, q = divmod(u, self.period)
        return self.lo[q] + m * self.shift

    def hi_at(self, u: int) -> int:
        m, q = divmod(u, self.period)
        return self.hi[q] + m * self.shift

    def span(self, u: int) -> tuple[int, int]:
        """First and last input pixel of unit u's field (unclamped)."""
        return self.lo_at(u), self.hi_at(u)

    @property
    def size(self) -> int:
        """Receptive field: the largest field of any unit."""
        return max(h - l + 1 for l, h in zip(self.lo, self.hi))

    @property
    def min_size(self) -> int:
        return min(h - l + 1 for l, h in zip(self.lo, self.hi))

    @property
    def jump(self) -> Fraction:
        """Effective stride in input pixels."""
        return Fraction(self.shift, self.period)

    @property
    def padding(self) -> int:
        """How far the first unit's field starts before input pixel 0."""
        return -self.lo[0]

    @property
    def centre(self) -> Fraction:
        """Centre of unit 0 on the grid ``centre + u * jump`` (exact when period is 1)."""
        j = self.jump
        return sum((Fraction(l + h, 2) - q * j for q, (l, h) in enumerate(zip(self.lo, self.hi))),
                   Fraction(0)) / self.period

    @property
    def jitter(self) -> Fraction:
        """Largest distance of a unit's centre from the grid (0 for integer strides)."""
        c, j = self.centre, self.jump
        return max(abs(Fraction(l + h, 2) - (c + q * j))
                   for q, (l, h) in enumerate(zip(self.lo, self.hi)))

    def lift(self, period: int) -> "AxisField":
        """The same fields written with a longer period (a multiple of this one)."""
        if period == self.period:
            return self
        return AxisField(period, self.shift * (period // self.period),
                         tuple(self.lo_at(u) for u in range(period)),
                         tuple(self.hi_at(u) for u in range(period)))

    def through(self, w: Window) -> "AxisField":
        """Fields after a layer that reads this map through window ``w``."""
        if w.shift == 0:
            m = 1
        else:
            m = self.period // gcd(self.period, w.shift)
        period = w.period * m
        shift = (w.shift * m // self.period) * self.shift
        lo, hi = [], []
        for u in range(period):
            k, q = divmod(u, w.period)
            taps = w.taps[q]
            if not taps:
                raise ValueError("some output units read no input")
            lo.append(min(self.lo_at(t + k * w.shift) for t in taps))
            hi.append(max(self.hi_at(t + k * w.shift) for t in taps))
        return AxisField(period, shift, tuple(lo), tuple(hi)).normalized()

    def normalized(self) -> "AxisField":
        """The shortest period that describes the same fields."""
        p = self.period
        for d in range(1, p):
            if p % d or (self.shift * d) % p:
                continue
            step = self.shift * d // p
            if all(self.lo[u + d] == self.lo[u] + step and self.hi[u + d] == self.hi[u] + step
                   for u in range(p - d)):
                return AxisField(d, step, self.lo[:d], self.hi[:d])
        return self


def merge_fields(fields: Sequence[AxisField]) -> AxisField:
    """Hull of several maps' fields, unit by unit (all must have the same jump)."""
    period = 1
    for f in fields:
        period = period * f.period // gcd(period, f.period)
    lifted = [f.lift(period) for f in fields]
    shifts = {f.shift for f in lifted}
    if len(shifts) != 1:
        raise ValueError("fields with different strides have no common hull")
    lo = tuple(min(f.lo[u] for f in lifted) for u in range(period))
    hi = tuple(max(f.hi[u] for f in lifted) for u in range(period))
    return AxisField(period, lifted[0].shift, lo, hi).normalized()


# ---------------------------------------------------------------------- results


@dataclass(frozen=True)
class LayerField:
    """The receptive field of one record, per spatial axis of the input."""

    index: int
    name: str
    type: str
    kind: str
    output_shape: tuple[int, ...]
    axes: tuple[Any, ...]  # per input axis: AxisField, GLOBAL, UNKNOWN or CONSTANT
    global_context: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """spatial, global, partial (some axes global), unknown or constant."""
        kinds = {("spatial" if isinstance(a, AxisField) else a) for a in self.axes}
        if UNKNOWN in kinds:
            return UNKNOWN
        if kinds == {"spatial"}:
            return "spatial"
        if kinds == {GLOBAL}:
            return GLOBAL
        if kinds == {CONSTANT}:
            return CONSTANT
        if kinds <= {GLOBAL, CONSTANT}:
            return GLOBAL
        return "partial"

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
class ReceptiveFieldReport:
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


@dataclass(frozen=True)
class _State:
    """What one record's output is, spatially."""

    dims: tuple[int | None, ...]  # tensor dim holding each input axis (None: no longer one)
    axes: tuple[Any, ...]  # AxisField | GLOBAL | UNKNOWN | CONSTANT per axis
    context: bool = False


@dataclass
class _Step:
    state: _State
    warnings: list[str] = field(default_factory=list)


def _norm_dim(d: int, ndim: int) -> int:
    return d % ndim if ndim else 0


def receptive_fields(report: ModelReport) -> ReceptiveFieldReport:
    """Walk the traced records in order and compute every layer's receptive field."""
    spatial = tuple(report.input_size[1:])
    n_axes = len(spatial)
    names = AXIS_NAMES.get(n_axes, tuple(f"axis{i}" for i in range(n_axes)))
    input_shape = (report.batch, *report.input_size)
    states: dict[int, _State] = {
        MODEL_INPUT: _State(tuple(range(2, 2 + n_axes)), tuple(AxisField.identity() for _ in spatial))
    }
    shapes: dict[int, tuple[int, ...]] = {MODEL_INPUT: input_shape}
    names_of: dict[int, str] = {MODEL_INPUT: "input"}
    out: list[LayerField] = []
    all_warnings: list[str] = []
    for r in report.layers:
        ins = [(i, states[i], shapes[i]) for i in r.inputs if i in states]
        try:
            step = _step(r, ins, n_axes, names, names_of)
        except Exception as exc:  # one odd layer must not sink the whole analysis
            step = _Step(_State((None,) * n_axes, (UNKNOWN,) * n_axes),
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


def _step(r: LayerRecord, ins: list[tuple[int, _State, tuple[int, ...]]], n_axes: int,
          names: tuple[str, ...], names_of: dict[int, str]) -> _Step:
    out_shape = tuple(r.output_shape)
    if not ins:
        return _Step(_State((None,) * n_axes, (CONSTANT,) * n_axes))
    attrs = r.attrs
    t = r.type

    if r.kind == "shape" or t in ("Flatten", "Unflatten"):
        return _reshape(r, ins[0], n_axes)
    if r.kernel_size is not None and t not in ("LocalResponseNorm", "CrossMapLRN2d"):
        return _window_layer(r, ins[0], names)
    if attrs.get("adaptive"):
        return _adaptive(r, ins[0], names)
    if t in UPSAMPLE_MODULES or "mode" in attrs or t.startswith("upsample_") or t.startswith("_upsample_"):
        return _upsample(r, ins[0], names)
    if t in ("PixelShuffle", "pixel_shuffle", "PixelUnshuffle", "pixel_unshuffle"):
        return _pixel_shuffle(r, ins[0], names)
    if t == "slice":
        return _slice(r, ins[0], names)
    if t == "constant_pad_nd" or t in PAD_MODULES:
        return _pad(r, ins[0], names)
    if t in REDUCTION_OPS:
        return _reduce(r, ins[0], n_axes)
    if t in LINEAR_OPS:
        return _linear(r, ins, n_axes)
    if t in MATMUL_OPS:
        return _mix_all(ins, n_axes)
    if t in ("cat", "stack"):
        return _cat(r, ins, n_axes, names, names_of)
    if t in ("select", "index", "index_select", "narrow", "gather", "repeat", "flip", "roll",
             "unfold", "im2col", "col2im", "grid_sampler_2d", "as_strided"):
        return _opaque_if_spatial(r, ins, n_axes, names, names_of)
    warnings: list[str] = []
    context = False
    if t in CONTEXT_MODULES or t in CONTEXT_OPS:
        context = True
    elif t in ("LayerNorm", "native_layer_norm"):
        # LayerNorm normalises over trailing dims: when the last dim is spatial (NCHW
        # input) its statistics come from the whole map; over channels (NHWC) it is pointwise.
        st, shp = ins[0][1], ins[0][2]
        context = any(d == len(shp) - 1 for d in st.dims if d is not None)
    elif t in SOFTMAX_OPS:
        st, shp = ins[0][1], ins[0][2]
        dim = r.attrs.get("dim")
        if dim is not None:
            # Normalised over a spatial dim: every unit depends on that whole row.
            context = (dim % len(shp)) in {d for d in st.dims if d is not None} if shp else False
        elif any(isinstance(a, AxisField) for a in st.axes):
            warnings.append("softmax dimension not recorded; assumed to be the channels")
    if not _same_spatial(ins, out_shape):
        return _opaque_if_spatial(r, ins, n_axes, names, names_of)
    if not context and t not in SOFTMAX_OPS and t not in POINTWISE_MODULES \
            and t not in POINTWISE_OPS and t not in ("LayerNorm", "native_layer_norm"):
        warnings.append(f"{t} not known to this analysis; assumed to act on each position")
    step = _elementwise(r, ins, n_axes, names, names_of)
    step.warnings[:0] = warnings
    if context:
        step.state = _State(step.state.dims, step.state.axes, True)
    return step


def _same_spatial(ins, out_shape) -> bool:
    """Every spatial dim of every input keeps its size (or is broadcast from size 1)."""
    for _, st, shp in ins:
        for a, d in enumerate(st.dims):
            if d is None or not isinstance(st.axes[a], AxisField):
                continue
            e = d + len(out_shape) - len(shp)
            if not (0 <= e < len(out_shape)) or (out_shape[e] != shp[d] and shp[d] != 1):
                return False
    return True


def _opaque_if_spatial(r, ins, n_axes, names, names_of) -> _Step:
    if all(all(not isinstance(a, AxisField) for a in st.axes) for _, st, _ in ins):
        return _elementwise(r, ins, n_axes, names, names_of)
    return _Step(_State((None,) * n_axes, (UNKNOWN,) * n_axes),
                 [f"{r.type} on a spatial map is not understood; field unknown from here"])


def _elementwise(r: LayerRecord, ins, n_axes: int, names, names_of) -> _Step:
    """Pointwise ops and merges (add, mul, cat on channels...): hull of the inputs' fields."""
    out_shape = tuple(r.output_shape)
    nd = len(out_shape)
    per_axis: dict[str, list[str]] = {}  # warning text -> axes it applies to
    dims: list[int | None] = []
    axes: list[Any] = []
    context = any(st.context for _, st, _ in ins)
    for a in range(n_axes):
        fields: list[tuple[str, AxisField]] = []
        has_global = has_unknown = False
        dim = None
        for i, st, shp in ins:
            state = st.axes[a]
            if state == CONSTANT:
                continue
            d = st.dims[a]
            e = None if d is None else d + nd - len(shp)
            if e is not None and not (0 <= e < nd):
                e = None
            if state == UNKNOWN:
                has_unknown = True
            elif state == GLOBAL:
                has_global = True
            elif e is None or shp[d] != out_shape[e]:
                # A spatial map broadcast along this axis: every output unit sees the same
                # input unit, wherever it is.
                has_global = True
                context = True
            else:
                fields.append((names_of.get(i, str(i)), state))
            if e is not None and (dim is None or (e is not None and isinstance(state, AxisField))):
                dim = e
        dims.append(dim)
        if has_unknown:
            axes.append(UNKNOWN)
        elif fields:
            if has_global:
                context = True
            merged, warn = _merge_axis(fields, out_shape[dim] if dim is not None else 1)
            axes.append(merged)
            if warn:
                per_axis.setdefault(warn, []).append(names[a])
        elif has_global:
            axes.append(GLOBAL)
        else:
            axes.append(CONSTANT)
    warnings = [f"inputs not aligned on {' and '.join(ax)}: {text}" for text, ax in per_axis.items()]
    return _Step(_State(tuple(dims), tuple(axes), context), warnings)


def _fmt(v: Fraction) -> str:
    return str(v.numerator) if v.denominator == 1 else f"{float(v):g}"


def _describe(name: str, f: AxisField, what: str) -> str:
    value = _fmt(f.jump) if what == "stride" else _fmt(f.centre)
    jitter = f.jitter
    spread = f" ±{_fmt(jitter)}" if what == "centre" and jitter else ""
    return f"{name} {what} {value}{spread}"


def bound_on_grid(base: AxisField, others: Sequence[AxisField], n: int) -> AxisField:
    """Fields on ``base``'s unit grid wide enough to hold, for each of the ``n`` units of
    the map, that unit's field in every one of ``others`` (whose strides differ)."""
    lo, hi = list(base.lo), list(base.hi)
    for f in others:
        for u in range(n):
            m, q = divmod(u, base.period)
            lo[q] = min(lo[q], f.lo_at(u) - m * base.shift)
            hi[q] = max(hi[q], f.hi_at(u) - m * base.shift)
    return AxisField(base.period, base.shift, tuple(lo), tuple(hi)).normalized()


def _merge_axis(fields: list[tuple[str, AxisField]], n: int) -> tuple[Any, str | None]:
    """Hull of the branches' fields, and a warning when they are not aligned."""
    uniq: list[tuple[str, AxisField]] = []
    for name, f in fields:
        if not any(f == g for _, g in uniq):
            uniq.append((name, f))
    if len(uniq) == 1:
        return uniq[0][1], None
    jumps = {f.jump for _, f in uniq}
    if len(jumps) > 1:
        # No common unit grid (e.g. align_corners=True upsampling next to a skip). Keep the
        # most regular grid and widen it to hold every unit's true hull on this map.
        desc = ", ".join(_describe(name, f, "stride") for name, f in uniq)
        base = min(uniq, key=lambda nf: (nf[1].period, -nf[1].size))[1]
        same = [f for _, f in uniq if f.jump == base.jump]
        other = [f for _, f in uniq if f.jump != base.jump]
        merged = bound_on_grid(merge_fields(same), other, n)
        return merged, (f"different strides ({desc}); kept the stride-{_fmt(base.jump)} grid, "
                        f"fields widened to hold every branch over the {n} units of this map")
    merged = merge_fields([f for _, f in uniq])
    centres = sorted({f.centre for _, f in uniq})
    if len(centres) > 1:
        desc = ", ".join(_describe(n, f, "centre") for n, f in uniq)
        return merged, (f"centres differ by {_fmt(centres[-1] - centres[0])} px ({desc}); "
                        f"field is their hull")
    return merged, None


def _spatial_dims_of_window(r: LayerRecord, st: _State, shp: tuple[int, ...]) -> dict[int, int]:
    """input axis -> position in the layer's kernel tuple (trailing dims of the input)."""
    nk = len(r.kernel_size)
    nd = len(shp)
    out = {}
    for a, d in enumerate(st.dims):
        if d is not None and d >= nd - nk:
            out[a] = d - (nd - nk)
    return out


def _window_layer(r: LayerRecord, inp, names) -> _Step:
    """Convolution, transposed convolution, max/avg pooling."""
    _, st, shp = inp
    attrs = r.attrs
    nk = len(r.kernel_size)
    stride = r.stride or (1,) * nk
    padding = r.padding or (0,) * nk
    dilation = r.dilation or (1,) * nk
    transposed = bool(attrs.get("transposed"))
    is_pool = "pool" in attrs
    axes = list(st.axes)
    dims = list(st.dims)
    warnings = []
    nd_out = len(r.output_shape)
    for a, t in _spatial_dims_of_window(r, st, shp).items():
        k, s, p, d = r.kernel_size[t], stride[t], padding[t], dilation[t]
        state = axes[a]
        dims[a] = st.dims[a] + nd_out - len(shp)
        if not isinstance(state, AxisField):
            continue
        n_in = shp[st.dims[a]]
        n_out = r.output_shape[dims[a]]
        if is_pool and n_out == 1 and n_in > 1 and d * (k - 1) + 1 >= n_in + p:
            axes[a] = GLOBAL  # a pooling window as large as its map: global pooling
            continue
        w = Window.transposed(k, s, p, d) if transposed else Window.conv(k, s, p, d)
        try:
            axes[a] = state.through(w)
        except ValueError as exc:
            axes[a] = UNKNOWN
            warnings.append(f"{names[a]}: {exc}")
    return _Step(_State(tuple(dims), tuple(axes), st.context), warnings)


def _adaptive(r: LayerRecord, inp, names) -> _Step:
    _, st, shp = inp
    out_shape = tuple(r.output_shape)
    axes, dims = list(st.axes), list(st.dims)
    for a, d in enumerate(st.dims):
        if d is None:
            continue
        e = d + len(out_shape) - len(shp)
        dims[a] = e
        if not isinstance(axes[a], AxisField):
            continue
        n_in, n_out = shp[d], out_shape[e]
        if n_out == 1 and n_in > 1:
            axes[a] = GLOBAL
        elif n_in != n_out:
            axes[a] = axes[a].through(Window.adaptive(n_in, n_out))
    return _Step(_State(tuple(dims), tuple(axes), st.context))


def _upsample(r: LayerRecord, inp, names) -> _Step:
    _, st, shp = inp
    attrs = r.attrs
    mode = str(attrs.get("mode") or ("bilinear" if "Bilinear" in r.type else "nearest"))
    mode = mode.replace("_", "-") if mode.startswith("nearest") else mode
    align = bool(attrs.get("align_corners", r.type == "UpsamplingBilinear2d"))
    out_shape = tuple(r.output_shape)
    axes, dims = list(st.axes), list(st.dims)
    warnings = []
    if mode not in ("nearest", "nearest-exact", "area") and "align_corners" not in attrs:
        warnings.append(f"{mode} interpolation: align_corners not recorded by the tracer; "
                        f"assumed {align}")
    for a, d in enumerate(st.dims):
        if d is None:
            continue
        e = d + len(out_shape) - len(shp)
        dims[a] = e
        if not isinstance(axes[a], AxisField):
            continue
        n_in, n_out = shp[d], out_shape[e]
        if n_in == n_out:
            continue
        if mode == "area":
            axes[a] = axes[a].through(Window.adaptive(n_in, n_out))
        else:
            axes[a] = axes[a].through(Window.resample(n_in, n_out, mode, align))
    return _Step(_State(tuple(dims), tuple(axes), st.context), warnings)


def _pixel_shuffle(r: LayerRecord, inp, names) -> _Step:
    _, st, shp = inp
    out_shape = tuple(r.output_shape)
    axes, dims = list(st.axes), list(st.dims)
    for a, d in enumerate(st.dims):
        if d is None:
            continue
        e = d + len(out_shape) - len(shp)
        dims[a] = e
        if not isinstance(axes[a], AxisField):
            continue
        n_in, n_out = shp[d], out_shape[e]
        if n_out > n_in:  # shuffle: output u comes from input u // f
            axes[a] = axes[a].through(Window.resample(n_in, n_out, "nearest"))
        elif n_out < n_in:  # unshuffle: output u gathers f inputs
            f = n_in // n_out
            axes[a] = axes[a].through(Window.conv(f, f))
    return _Step(_State(tuple(dims), tuple(axes), st.context))


def _slice(r: LayerRecord, inp, names) -> _Step:
    _, st, shp = inp
    attrs = r.attrs
    nd = len(shp)
    dim = _norm_dim(int(attrs.get("dim", 0)), nd)
    axes = list(st.axes)
    for a, d in enumerate(st.dims):
        if d != dim or not isinstance(axes[a], AxisField):
            continue
        n = shp[d]
        start = attrs.get("start")
        start = 0 if start is None else int(start)
        if start < 0:
            start += n
        start = min(max(start, 0), n)
        step = int(attrs.get("step", 1) or 1)
        axes[a] = axes[a].through(Window.offset(start, step))
    return _Step(_State(st.dims, tuple(axes), st.context))


def _pad(r: LayerRecord, inp, names) -> _Step:
    _, st, shp = inp
    out_shape = tuple(r.output_shape)
    pads = r.attrs.get("pad")
    axes = list(st.axes)
    warnings = []
    nd = len(shp)
    for a, d in enumerate(st.dims):
        if d is None or not isinstance(axes[a], AxisField):
            continue
        if pads is not None:
            i = nd - 1 - d  # pad lists the last dim first: (left, right, top, bottom, ...)
            left = int(pads[2 * i]) if 2 * i < len(pads) else 0
        else:
            extra = out_shape[d] - shp[d]
            left = extra // 2
            if extra:
                warnings.append(f"{names[a]}: padding amounts not recorded; assumed "
                                f"{left} before and {extra - left} after")
        if left:
            axes[a] = axes[a].through(Window.offset(-left))
    return _Step(_State(st.dims, tuple(axes), st.context), warnings)


def _reduce(r: LayerRecord, inp, n_axes: int) -> _Step:
    _, st, shp = inp
    nd = len(shp)
    out_nd = len(r.output_shape)
    dim = r.attrs.get("dim")
    if dim is None:
        if out_nd == nd and tuple(r.output_shape) == shp:
            reduced: set[int] = set()
        else:
            reduced = set(range(nd)) if out_nd < nd or out_nd == 0 else {
                i for i in range(nd) if r.output_shape[i] == 1 and shp[i] != 1}
    else:
        dims_ = dim if isinstance(dim, (list, tuple)) else (dim,)
        reduced = {_norm_dim(int(x), nd) for x in dims_}
    keep = out_nd == nd
    axes, dims = list(st.axes), list(st.dims)
    for a, d in enumerate(st.dims):
        if d is None:
            continue
        if d in reduced:
            axes[a] = GLOBAL if axes[a] != CONSTANT else CONSTANT
            dims[a] = d if keep else None
        elif not keep:
            dims[a] = d - sum(1 for x in reduced if x < d)
    return _Step(_State(tuple(dims), tuple(axes), st.context))


def _linear(r: LayerRecord, ins, n_axes: int) -> _Step:
    """A fully connected layer mixes the last dim of its input."""
    _, st, shp = ins[0]
    last = len(shp) - 1
    axes, dims = list(st.axes), list(st.dims)
    for a, d in enumerate(st.dims):
        if d == last:
            axes[a] = GLOBAL if axes[a] != CONSTANT else CONSTANT
            dims[a] = None
    return _Step(_State(tuple(dims), tuple(axes), st.context or
                        any(s.context for _, s, _ in ins[1:])))


def _mix_all(ins, n_axes: int) -> _Step:
    """A matrix product (attention, capsule routing) mixes every position with every other."""
    has_input = any(a != CONSTANT for _, st, _ in ins for a in st.axes)
    state = GLOBAL if has_input else CONSTANT
    return _Step(_State((None,) * n_axes, (state,) * n_axes,
                        any(st.context for _, st, _ in ins)))


def _cat(r: LayerRecord, ins, n_axes: int, names, names_of) -> _Step:
    out_nd = len(r.output_shape)
    raw = int(r.attrs.get("dim", 0))
    if r.type == "stack":
        dim = _norm_dim(raw, out_nd)
        # stack inserts a new dim: shift each input's dims at or after it
        shifted = []
        for i, st, shp in ins:
            nd = tuple(None if d is None else (d + 1 if d >= dim else d) for d in st.dims)
            shifted.append((i, _State(nd, st.axes, st.context),
                            tuple(shp[:dim]) + (1,) + tuple(shp[dim:])))
        return _elementwise(r, shifted, n_axes, names, names_of)
    dim = _norm_dim(raw, out_nd)
    for _, st, shp in ins:
        for a, d in enumerate(st.dims):
            if d is not None and d + out_nd - len(shp) == dim and isinstance(st.axes[a], AxisField):
                return _Step(_State((None,) * n_axes, (UNKNOWN,) * n_axes),
                             [f"concatenation along spatial axis {names[a]}; field unknown from here"])
    # Inputs of a concatenation differ along `dim` (channels): compare spatial dims only.
    return _elementwise(r, ins, n_axes, names, names_of)


def _reshape(r: LayerRecord, inp, n_axes: int) -> _Step:
    """Views, reshapes, flatten, permutes: find where each spatial dim went."""
    _, st, shp = inp
    out = tuple(r.output_shape)
    t = r.type
    warnings: list[str] = []
    if out == shp and t not in ("permute", "transpose", "t", "movedim", "numpy_T"):
        return _Step(st)
    axes, dims = list(st.axes), list(st.dims)
    moved = _moved_dims(t, r.attrs.get("dims"), len(shp)) if len(out) == len(shp) else None
    if moved is not None:  # the tracer recorded the permutation: follow it exactly
        dims = [None if d is None else moved[d] for d in st.dims]
    elif t in ("permute", "transpose", "t", "movedim", "numpy_T"):
        used: set[int] = set()
        for a, d in enumerate(st.dims):
            if d is None:
                continue
            n = shp[d]
            if d < len(out) and out[d] == n and d not in used:
                e = d
            else:
                cands = [e for e in range(1, len(out)) if out[e] == n and e not in used]
                if len(cands) > 1 and isinstance(axes[a], AxisField):
                    warnings.append("permutation not recorded; spatial dims located by size")
                e = cands[0] if cands else None
            dims[a] = e
            if e is not None:
                used.add(e)
            elif axes[a] != CONSTANT:
                axes[a] = GLOBAL
    elif t == "expand":
        for a, d in enumerate(st.dims):
            if d is None:
                continue
            e = d + len(out) - len(shp)
            dims[a] = e
            if shp[d] == 1 and out[e] != 1 and isinstance(axes[a], AxisField):
                axes[a] = GLOBAL  # one unit copied to every position
    else:
        for a, d in enumerate(st.dims):
            if d is None:
                continue
            e = _reshape_dim(shp, out, d)
            dims[a] = e
            if e is None and axes[a] != CONSTANT:
                axes[a] = GLOBAL  # merged with another dim: the spatial layout is gone
    return _Step(_State(tuple(dims), tuple(axes), st.context), warnings)


def _moved_dims(t: str, recorded: Any, ndim: int) -> list[int] | None:
    """Input dim -> output dim of a recorded permute/transpose, or None if not recorded."""
    if not recorded or ndim == 0:
        return None
    if t == "permute" and len(recorded) == ndim:
        order = [d % ndim for d in recorded]  # output dim i is input dim order[i]
        return [order.index(d) for d in range(ndim)]
    if t == "transpose" and len(recorded) == 2:
        a, b = (d % ndim for d in recorded)
        moved = list(range(ndim))
        moved[a], moved[b] = b, a
        return moved
    return None


def _reshape_dim(shp: Sequence[int], out: Sequence[int], d: int) -> int | None:
    """Where input dim d survives intact in a row-major reshape, or None."""
    n = shp[d]
    before = prod(shp[:d])
    acc = 1
    for e, size in enumerate(out):
        if acc == before and size == n:
            return e
        acc *= size
        if acc > before:
            return None
    return None


# ---------------------------------------------------------------------- formatting helpers


def axis_text(values: Iterable[Any]) -> str:
    """One value when every axis agrees ('196'), else per axis ('19x25'); '-' for None."""
    vals = ["-" if v is None else (str(v) if not isinstance(v, Fraction) or v.denominator != 1
                                   else str(v.numerator)) for v in values]
    if not vals:
        return "-"
    return vals[0] if len(set(vals)) == 1 else "x".join(vals)
