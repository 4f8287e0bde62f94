"""Receptive-field rules per operation: how each traced record maps the fields of its
inputs to the fields of its output (``apply_rule``), one small handler per rule.

Which rule an op follows is written in its op-registry entry (``cnnscope.ops``: ``RfRule``);
``rule_of`` reads it, after the record's own geometry (a kernel, an adaptive output size,
an interpolation mode), and ``HANDLERS`` maps each rule to its handler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import prod
from typing import Any, Sequence

from cnnscope.analysis.rf_axis import (
    CONSTANT,
    GLOBAL,
    UNKNOWN,
    AxisField,
    Window,
    bound_on_grid,
    merge_fields,
)
from cnnscope.ops.deform_conv_math import RF_NOTE as DEFORMABLE_NOTE
from cnnscope.ops.entry import RfRule
from cnnscope.ops.registry import lookup
from cnnscope.trace.records import LayerRecord


@dataclass(frozen=True)
class SpatialState:
    """What one record's output is, spatially."""

    dims: tuple[int | None, ...]  # tensor dim holding each input axis (None: no longer one)
    axes: tuple[Any, ...]  # AxisField | GLOBAL | UNKNOWN | CONSTANT per axis
    context: bool = False


@dataclass
class RuleStep:
    state: SpatialState
    warnings: list[str] = field(default_factory=list)


def _norm_dim(d: int, ndim: int) -> int:
    return d % ndim if ndim else 0


def rule_of(r: LayerRecord) -> RfRule | None:
    """The record's rule: its own geometry first, then its op-table entry; None when the
    analysis does not know it. The order matters (a pooling layer's record has a kernel
    whatever its type) and is the order this analysis has always applied."""
    spec = lookup(r.type)
    rule = spec.rf if spec is not None else None
    if r.kind == "shape" or rule is RfRule.RESHAPE:
        return RfRule.RESHAPE
    if rule is RfRule.DEFORMABLE:  # a window too, but not a regular one
        return rule if r.kernel_size is not None else None
    if r.kernel_size is not None and not (spec is not None and spec.no_window):
        return RfRule.WINDOW
    attrs = r.attrs
    if attrs.get("adaptive"):
        return RfRule.ADAPTIVE
    if "mode" in attrs:
        return RfRule.RESIZE
    if rule is RfRule.WINDOW or rule is RfRule.ADAPTIVE:
        return None  # a window or adaptive layer whose record lacks the geometry it reads
    return rule


def apply_rule(r: LayerRecord, ins: list[tuple[int, SpatialState, tuple[int, ...]]], n_axes: int,
          names: tuple[str, ...], names_of: dict[int, str]) -> RuleStep:
    if not ins:
        return RuleStep(SpatialState((None,) * n_axes, (CONSTANT,) * n_axes))
    rule = rule_of(r)
    if rule is None:
        return _positionwise(r, ins, n_axes, names, names_of, known=False)
    return HANDLERS[rule](r, ins, n_axes, names, names_of)


def _positionwise(r: LayerRecord, ins, n_axes: int, names, names_of, *, known: bool = True,
                  context: bool = False, warnings: list[str] | None = None) -> RuleStep:
    """A layer that keeps the spatial size acts on each position (plus, with ``context``,
    statistics of the whole map); one that changes it is not understood."""
    if not _same_spatial(ins, tuple(r.output_shape)):
        return _opaque_if_spatial(r, ins, n_axes, names, names_of)
    warnings = list(warnings or ())
    if not known:
        warnings.append(f"{r.type} not known to this analysis; assumed to act on each position")
    step = _elementwise(r, ins, n_axes, names, names_of)
    step.warnings[:0] = warnings
    if context:
        step.state = SpatialState(step.state.dims, step.state.axes, True)
    return step


def _pointwise(r, ins, n_axes, names, names_of) -> RuleStep:
    return _positionwise(r, ins, n_axes, names, names_of)


def _context(r, ins, n_axes, names, names_of) -> RuleStep:
    return _positionwise(r, ins, n_axes, names, names_of, context=True)


def _layer_norm(r, ins, n_axes, names, names_of) -> RuleStep:
    # LayerNorm normalises over trailing dims: when the last dim is spatial (NCHW
    # input) its statistics come from the whole map; over channels (NHWC) it is pointwise.
    st, shp = ins[0][1], ins[0][2]
    context = any(d == len(shp) - 1 for d in st.dims if d is not None)
    return _positionwise(r, ins, n_axes, names, names_of, context=context)


def _softmax(r, ins, n_axes, names, names_of) -> RuleStep:
    st, shp = ins[0][1], ins[0][2]
    dim = r.attrs.get("dim")
    context = False
    warnings = []
    if dim is not None:
        # Normalised over a spatial dim: every unit depends on that whole row.
        context = (dim % len(shp)) in {d for d in st.dims if d is not None} if shp else False
    elif any(isinstance(a, AxisField) for a in st.axes):
        warnings.append("softmax dimension not recorded; assumed to be the channels")
    return _positionwise(r, ins, n_axes, names, names_of, context=context, warnings=warnings)


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


def _opaque_if_spatial(r, ins, n_axes, names, names_of) -> RuleStep:
    if all(all(not isinstance(a, AxisField) for a in st.axes) for _, st, _ in ins):
        return _elementwise(r, ins, n_axes, names, names_of)
    return RuleStep(SpatialState((None,) * n_axes, (UNKNOWN,) * n_axes),
                 [f"{r.type} on a spatial map is not understood; field unknown from here"])


def _elementwise(r: LayerRecord, ins, n_axes: int, names, names_of) -> RuleStep:
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
    return RuleStep(SpatialState(tuple(dims), tuple(axes), context), warnings)


def _fmt(v: Fraction) -> str:
    return str(v.numerator) if v.denominator == 1 else f"{float(v):g}"


def _describe(name: str, f: AxisField, what: str) -> str:
    value = _fmt(f.jump) if what == "stride" else _fmt(f.centre)
    jitter = f.jitter
    spread = f" ±{_fmt(jitter)}" if what == "centre" and jitter else ""
    return f"{name} {what} {value}{spread}"


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


def _spatial_dims_of_window(r: LayerRecord, st: SpatialState, shp: tuple[int, ...]) -> dict[int, int]:
    """input axis -> position in the layer's kernel tuple (trailing dims of the input)."""
    nk = len(r.kernel_size)
    nd = len(shp)
    out = {}
    for a, d in enumerate(st.dims):
        if d is not None and d >= nd - nk:
            out[a] = d - (nd - nk)
    return out


def _window_layer(r: LayerRecord, inp, names) -> RuleStep:
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
    return RuleStep(SpatialState(tuple(dims), tuple(axes), st.context), warnings)


def _deformable(r: LayerRecord, ins, n_axes: int, names, names_of) -> RuleStep:
    """Deformable convolution: the nominal field, that of the regular grid of its geometry
    (zero offsets), merged with the fields of its offsets and mask, which it reads at the
    same output position; marked as nominal (the real field moves with the data)."""
    window = _window_layer(r, ins[0], names)
    grid = (r.index, window.state, tuple(r.output_shape))
    step = _elementwise(r, [grid, *ins[1:]], n_axes, names, {**names_of, r.index: r.name})
    step.warnings[:0] = [*window.warnings, DEFORMABLE_NOTE]
    return step


def _resized(st: SpatialState, shp: tuple[int, ...], out_shape: tuple[int, ...],
             resize: Any) -> SpatialState:
    """Follow each spatial axis from its input dim to the output's; where the axis holds a
    field and its size changes from ``n_in`` to ``n_out``, ``resize(field, n_in, n_out)``
    gives the output's field (adaptive pooling, interpolation, pixel shuffles)."""
    axes, dims = list(st.axes), list(st.dims)
    for a, d in enumerate(st.dims):
        if d is None:
            continue
        e = d + len(out_shape) - len(shp)
        dims[a] = e
        if isinstance(axes[a], AxisField) and shp[d] != out_shape[e]:
            axes[a] = resize(axes[a], shp[d], out_shape[e])
    return SpatialState(tuple(dims), tuple(axes), st.context)


def _adaptive(r: LayerRecord, inp, names) -> RuleStep:
    _, st, shp = inp

    def pool(field: AxisField, n_in: int, n_out: int) -> Any:
        return GLOBAL if n_out == 1 else field.through(Window.adaptive(n_in, n_out))

    return RuleStep(_resized(st, shp, tuple(r.output_shape), pool))


def _upsample(r: LayerRecord, inp, names) -> RuleStep:
    _, st, shp = inp
    attrs = r.attrs
    mode = str(attrs.get("mode") or ("bilinear" if "Bilinear" in r.type else "nearest"))
    mode = mode.replace("_", "-") if mode.startswith("nearest") else mode
    align = bool(attrs.get("align_corners", r.type == "UpsamplingBilinear2d"))
    warnings = []
    if mode not in ("nearest", "nearest-exact", "area") and "align_corners" not in attrs:
        warnings.append(f"{mode} interpolation: align_corners not recorded by the tracer; "
                        f"assumed {align}")

    def resample(field: AxisField, n_in: int, n_out: int) -> AxisField:
        if mode == "area":
            return field.through(Window.adaptive(n_in, n_out))
        return field.through(Window.resample(n_in, n_out, mode, align))

    return RuleStep(_resized(st, shp, tuple(r.output_shape), resample), warnings)


def _pixel_shuffle(r: LayerRecord, inp, names) -> RuleStep:
    _, st, shp = inp

    def shuffle(field: AxisField, n_in: int, n_out: int) -> AxisField:
        if n_out > n_in:  # shuffle: output u comes from input u // f
            return field.through(Window.resample(n_in, n_out, "nearest"))
        f = n_in // n_out  # unshuffle: output u gathers f inputs
        return field.through(Window.conv(f, f))

    return RuleStep(_resized(st, shp, tuple(r.output_shape), shuffle))


def _slice(r: LayerRecord, inp, names) -> RuleStep:
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
    return RuleStep(SpatialState(st.dims, tuple(axes), st.context))


def _pad(r: LayerRecord, inp, names) -> RuleStep:
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
    return RuleStep(SpatialState(st.dims, tuple(axes), st.context), warnings)


def _reduce(r: LayerRecord, inp, n_axes: int) -> RuleStep:
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
    return RuleStep(SpatialState(tuple(dims), tuple(axes), st.context))


def _linear(r: LayerRecord, ins, n_axes: int) -> RuleStep:
    """A fully connected layer mixes the last dim of its input."""
    _, st, shp = ins[0]
    last = len(shp) - 1
    axes, dims = list(st.axes), list(st.dims)
    for a, d in enumerate(st.dims):
        if d == last:
            axes[a] = GLOBAL if axes[a] != CONSTANT else CONSTANT
            dims[a] = None
    return RuleStep(SpatialState(tuple(dims), tuple(axes), st.context or
                        any(s.context for _, s, _ in ins[1:])))


def _mix_all(ins, n_axes: int) -> RuleStep:
    """A matrix product (attention, capsule routing) mixes every position with every other."""
    has_input = any(a != CONSTANT for _, st, _ in ins for a in st.axes)
    state = GLOBAL if has_input else CONSTANT
    return RuleStep(SpatialState((None,) * n_axes, (state,) * n_axes,
                        any(st.context for _, st, _ in ins)))


def _cat(r: LayerRecord, ins, n_axes: int, names, names_of) -> RuleStep:
    out_nd = len(r.output_shape)
    raw = int(r.attrs.get("dim", 0))
    if r.type == "stack":
        dim = _norm_dim(raw, out_nd)
        # stack inserts a new dim: shift each input's dims at or after it
        shifted = []
        for i, st, shp in ins:
            nd = tuple(None if d is None else (d + 1 if d >= dim else d) for d in st.dims)
            shifted.append((i, SpatialState(nd, st.axes, st.context),
                            tuple(shp[:dim]) + (1,) + tuple(shp[dim:])))
        return _elementwise(r, shifted, n_axes, names, names_of)
    dim = _norm_dim(raw, out_nd)
    for _, st, shp in ins:
        for a, d in enumerate(st.dims):
            if d is not None and d + out_nd - len(shp) == dim and isinstance(st.axes[a], AxisField):
                return RuleStep(SpatialState((None,) * n_axes, (UNKNOWN,) * n_axes),
                             [f"concatenation along spatial axis {names[a]}; field unknown from here"])
    # Inputs of a concatenation differ along `dim` (channels): compare spatial dims only.
    return _elementwise(r, ins, n_axes, names, names_of)


def _reshape(r: LayerRecord, inp, n_axes: int) -> RuleStep:
    """Views, reshapes, flatten, permutes: find where each spatial dim went."""
    _, st, shp = inp
    out = tuple(r.output_shape)
    t = r.type
    warnings: list[str] = []
    if out == shp and t not in ("permute", "transpose", "t", "movedim", "numpy_T"):
        return RuleStep(st)
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
    return RuleStep(SpatialState(tuple(dims), tuple(axes), st.context), warnings)


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


HANDLERS = {
    RfRule.RESHAPE: lambda r, ins, n_axes, names, names_of: _reshape(r, ins[0], n_axes),
    RfRule.WINDOW: lambda r, ins, n_axes, names, names_of: _window_layer(r, ins[0], names),
    RfRule.DEFORMABLE: _deformable,
    RfRule.ADAPTIVE: lambda r, ins, n_axes, names, names_of: _adaptive(r, ins[0], names),
    RfRule.RESIZE: lambda r, ins, n_axes, names, names_of: _upsample(r, ins[0], names),
    RfRule.PIXEL_SHUFFLE: lambda r, ins, n_axes, names, names_of: _pixel_shuffle(r, ins[0], names),
    RfRule.SLICE: lambda r, ins, n_axes, names, names_of: _slice(r, ins[0], names),
    RfRule.PAD: lambda r, ins, n_axes, names, names_of: _pad(r, ins[0], names),
    RfRule.REDUCE: lambda r, ins, n_axes, names, names_of: _reduce(r, ins[0], n_axes),
    RfRule.LINEAR: lambda r, ins, n_axes, names, names_of: _linear(r, ins, n_axes),
    RfRule.MIX_ALL: lambda r, ins, n_axes, names, names_of: _mix_all(ins, n_axes),
    RfRule.CAT: _cat,
    RfRule.OPAQUE_IF_SPATIAL: _opaque_if_spatial,
    RfRule.POINTWISE: _pointwise,
    RfRule.CONTEXT: _context,
    RfRule.LAYER_NORM: _layer_norm,
    RfRule.SOFTMAX: _softmax,
}
