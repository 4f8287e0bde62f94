"""Output sizes: every layer's output with the formula that gives it, and input limits.

Convolution and pooling (PyTorch's rule, the course notes' ``floor((n + 2p - f)/s + 1)``
with dilation; the arithmetic itself lives in ``cnnscope.ops.outsize``)::

    out = floor((n + 2p - d(k-1) - 1) / s + 1)

``ceil_mode`` pooling uses ceil instead, then drops a last window that would start in
the right padding. Transposed convolution inverts it::

    out = (n - 1)s - 2p + d(k-1) + output_padding + 1

``output_sizes`` writes that formula, filled in, next to each layer of a trace and checks
it against the traced size; ``why_too_small`` words the arithmetic of a window that does
not fit its input. Finding input limits needs building and tracing, which is the API's
job: ``api.minimum_input`` finds the smallest square input a network accepts,
``api.valid_sizes_near`` the accepted sizes near a requested one for networks that only
take some sizes (U-Net's unpadded path), and ``api.explain_too_small`` names the first
layer that fails on a too-small input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from cnnscope.results import LayerKind, Shown
from cnnscope.trace.records import LayerRecord, ModelReport

# ---------------------------------------------------------------------- the formulas
# Written once in ops/outsize.py (the meta shape kernels uses them too); re-exported here,
# where the CLI and the tests have always found them.
from cnnscope.ops.outsize import (  # noqa: F401 - re-exported
    conv_formula,
    conv_output_size,
    transposed_formula,
    transposed_output_size,
)


# ---------------------------------------------------------------------- per-layer rows


@dataclass(frozen=True)
class ShapeRow:
    """One layer's input and output sizes and the arithmetic between them."""

    index: int
    name: str
    type: str
    kind: LayerKind
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    formula: str  # "" when the layer keeps the spatial size (activations, merges...)
    consistent: bool = True  # the formula gives the traced size

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape), "formula": self.formula or None,
                "consistent": self.consistent}


@dataclass(frozen=True)
class ShapeReport(Shown):
    """Output sizes of one trace, with the smallest / valid inputs when asked for."""

    model: str
    input_size: tuple[int, ...]
    batch: int
    rows: tuple[ShapeRow, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    min_input: tuple[int, ...] | None = None  # smallest accepted input (square), if asked
    min_reason: str | None = None  # why one pixel less fails
    near: int | None = None
    valid_near: tuple[int, ...] | None = None  # accepted sizes near ``near``
    valid_rule: str | None = None  # what "accepted" means for valid_near
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_size": list(self.input_size),
            "batch": self.batch,
            "output_shapes": [list(s) for s in self.output_shapes],
            "min_input": list(self.min_input) if self.min_input else None,
            "min_reason": self.min_reason,
            "near": self.near,
            "valid_sizes_near": list(self.valid_near) if self.valid_near is not None else None,
            "valid_rule": self.valid_rule,
            "notes": list(self.notes),
            "layers": [r.to_dict() for r in self.rows],
        }


def _axis_text(parts: list[tuple[str, str]]) -> str:
    """One formula when every axis has the same arithmetic, else ``H: ...; W: ...``."""
    if not parts:
        return ""
    texts = [t for _, t in parts]
    if len(set(texts)) == 1:
        return texts[0]
    return "; ".join(f"{a}: {t}" for a, t in parts)


def _names(n: int) -> tuple[str, ...]:
    return {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(n, tuple(f"axis{i}" for i in range(n)))


def layer_formula(r: LayerRecord, in_shape: tuple[int, ...]) -> tuple[str, bool]:
    """The size arithmetic of one record (``""`` when it has none) and whether it matches."""
    out = tuple(r.output_shape)
    attrs = r.attrs
    ok = True
    parts: list[tuple[str, str]] = []
    if r.kernel_size is not None and len(in_shape) >= len(r.kernel_size) + 1:
        nk = len(r.kernel_size)
        names = _names(nk)
        stride = r.stride or (1,) * nk
        pad = r.padding or (0,) * nk
        dil = r.dilation or (1,) * nk
        opad = attrs.get("output_padding") or (0,) * nk
        for t in range(nk):
            n = in_shape[len(in_shape) - nk + t]
            if attrs.get("transposed"):
                text, value = transposed_formula(n, r.kernel_size[t], stride[t], pad[t], dil[t],
                                                 opad[t])
            else:
                text, value = conv_formula(n, r.kernel_size[t], stride[t], pad[t], dil[t],
                                           bool(attrs.get("ceil_mode")))
            ok = ok and value == out[len(out) - nk + t]
            parts.append((names[t], text))
        return _axis_text(parts), ok
    n_sp = min(len(in_shape), len(out)) - 2
    if n_sp < 1:
        return "", True
    names = _names(n_sp)
    pairs = [(names[i], in_shape[len(in_shape) - n_sp + i], out[len(out) - n_sp + i])
             for i in range(n_sp)]
    if attrs.get("adaptive"):
        return _axis_text([(a, f"adaptive {n} -> {m}") for a, n, m in pairs]), True
    if "mode" in attrs or r.type in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"):
        mode = attrs.get("mode", "")
        return _axis_text([(a, f"{n} * {_ratio(n, m)} = {m}" + (f" ({mode})" if mode else ""))
                           for a, n, m in pairs]), True
    if r.type == "slice":
        dim = int(attrs.get("dim", 0)) % len(in_shape)
        if dim < len(in_shape) - n_sp:
            return "", True
        n = in_shape[dim]
        start = attrs.get("start") or 0
        end = attrs.get("end")
        end = n if end is None or end > n else end
        step = attrs.get("step", 1) or 1
        step_text = f":{step}" if step != 1 else ""
        return f"{_names(n_sp)[dim - (len(in_shape) - n_sp)]}: crop [{start}:{end}{step_text}] of " \
               f"{n} = {out[dim]}", True
    if r.type == "constant_pad_nd" and attrs.get("pad"):
        pads = attrs["pad"]
        res = []
        for i, (a, n, m) in enumerate(pairs):
            j = n_sp - 1 - i
            if 2 * j + 1 < len(pads):
                left, right = pads[2 * j], pads[2 * j + 1]
                res.append((a, f"{n} + {left} + {right} = {m}"))
                ok = ok and n + left + right == m
        return _axis_text(res), ok
    if any(n != m for _, n, m in pairs):
        return _axis_text([(a, f"{n} -> {m}") for a, n, m in pairs]), True
    return "", True


def _ratio(n: int, m: int) -> str:
    q = Fraction(m, n)
    return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"


def output_sizes(report: ModelReport) -> ShapeReport:
    """One row per layer (views only when they change the shape) with its formula."""
    shapes = {-1: (report.batch, *report.input_size)}
    for r in report.layers:
        shapes[r.index] = tuple(r.output_shape)
    rows = []
    for r in report.layers:
        src = shapes.get(r.inputs[0]) if r.inputs else None
        in_shape = tuple(r.input_shapes[0]) if r.input_shapes else (src or ())
        if r.kind == "shape" and tuple(r.output_shape) == in_shape:
            continue
        text, ok = layer_formula(r, in_shape)
        rows.append(ShapeRow(r.index, r.name, r.type, r.kind, in_shape, tuple(r.output_shape),
                             text, ok))
    notes = []
    bad = [row.name for row in rows if not row.consistent]
    if bad:
        notes.append("formula does not give the traced size for: " + ", ".join(bad))
    return ShapeReport(report.model, tuple(report.input_size), report.batch, tuple(rows),
                       tuple(report.output_shapes), notes=tuple(notes))


# ---------------------------------------------------------------------- input limits


def why_too_small(module, shp: tuple[int, ...]) -> str | None:
    """E.g. "receives a 1x1 map ...: output floor(...) = 0" for a conv/pool module, else None."""
    k = getattr(module, "kernel_size", None)
    if k is None or not shp:
        return None
    nk = len(k) if isinstance(k, (tuple, list)) else len(shp) - 2
    nk = max(1, min(nk, len(shp) - 1))

    def tup(v, default):
        if v is None:
            return (default,) * nk
        return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nk

    ks, ss = tup(k, 1), tup(getattr(module, "stride", None) or k, 1)
    ps, ds = tup(getattr(module, "padding", 0), 0), tup(getattr(module, "dilation", 1), 1)
    if any(isinstance(p, str) for p in ps):  # padding="same"/"valid"
        return None
    ceil_mode = bool(getattr(module, "ceil_mode", False))
    transposed = bool(getattr(module, "transposed", False))
    spatial = shp[len(shp) - nk:]
    texts = []
    for t in range(nk):
        if transposed:
            text, value = transposed_formula(spatial[t], ks[t], ss[t], ps[t], ds[t])
        else:
            text, value = conv_formula(spatial[t], ks[t], ss[t], ps[t], ds[t], ceil_mode)
        if value < 1:
            texts.append((_names(nk)[t], text))
    if not texts:
        return None
    got = "x".join(map(str, spatial))
    keff = "x".join(str(d * (kk - 1) + 1) for kk, d in zip(ks, ds))
    pad = str(ps[0]) if len(set(ps)) == 1 else "x".join(map(str, ps))
    return (f"receives a {got} map, smaller than its {keff} window (padding {pad}): "
            f"output {_axis_text(texts)}")
