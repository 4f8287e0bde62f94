"""Side-by-side comparison of models, and the figures it derives from the record graph.

Two figures come from the dataflow graph of the records (``LayerRecord.inputs``):

``weighted_depth``
    The papers' "depth": weighted layers (convolutions, linear layers, matmuls with
    weights) along the deepest path from input to output. VGG-16: 13 convolutions + 3
    fully connected = 16; ResNet-50: 1 + 3 x 16 + 1 = 50 (the projection shortcut is the
    shorter path); GoogLeNet: 22.

``peak_activation``
    Peak activations: the most bytes of tensors the forward pass creates alive at once,
    during one inference forward pass (no autograd graph kept), the model input not
    counted: the caller holds it for the whole pass, so it is a constant that
    ``cnnscope memory --inference`` shows as its own row ("input + target") beside this
    figure (its "activations (forward pass)" row). VGG-16 at 1x3x224x224: the first
    convolution's output and its ReLU's, 2 x 64 x 224 x 224 floats. Every record's
    output is one tensor, alive from the record that produces it to the last record
    that reads it (inclusive); a result nothing reads is a model output and stays alive
    to the end. Views (reshape, flatten, slice, split, ...) and layers that return their
    input (Identity, Dropout in eval) allocate nothing and extend the life of the tensor
    they view. In-place activations (``ReLU(inplace=True)``) are counted as a new tensor,
    because the records do not say which ops ran in place: for such nets the figure is
    an upper bound, by at most one tensor. Parameters and workspace memory are not
    included.

This module imports no torch; ``cnnscope.compare`` builds the reports it works on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from cnnscope.errors import InvalidOptionError
from cnnscope.results import Shown
from cnnscope.trace.records import CONVENTION, LayerRecord, ModelReport

# Bytes per element of the dtypes --dtype accepts (aliases map to the canonical name).
DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "uint8": 1}
DTYPE_ALIASES = {"fp64": "float64", "double": "float64", "fp32": "float32", "float": "float32",
                 "fp16": "float16", "half": "float16", "bf16": "bfloat16"}

# Ops that return a view of their (first) input: no new memory.
_VIEW_OPS = {"slice", "select", "narrow", "split", "split_with_sizes", "chunk", "unbind",
             "expand", "alias", "detach", "view", "reshape", "as_strided"}
# torch.nn layers that return their input unchanged (Dropout only in eval: no FLOPs then).
_IDENTITY_MODULES = {"Identity", "Flatten", "Unflatten", "Dropout", "Dropout1d", "Dropout2d",
                     "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"}


def dtype_bytes(dtype: str) -> tuple[str, int]:
    """``"fp16"`` -> ``("float16", 2)``; unknown names raise a one-line error."""
    name = DTYPE_ALIASES.get(dtype.lower(), dtype.lower())
    if name not in DTYPE_BYTES:
        raise InvalidOptionError(f"unknown dtype {dtype!r}",
                                 "use one of " + ", ".join(DTYPE_BYTES))
    return name, DTYPE_BYTES[name]


# ---------------------------------------------------------------------- graph figures


def is_weighted(r: LayerRecord) -> bool:
    """A convolution, linear layer or weighted matmul (a layer the papers count in depth):
    a layer or op whose op-registry entry is ``weighted``; an op only when it owns
    parameters (a matmul of two activations is not a layer)."""
    # Imported here: the renderers import this module, and they import no torch.
    from cnnscope.ops.registry import lookup

    spec = lookup(r.type)
    if spec is None or not spec.weighted:
        return False
    return r.kind == "module" or (r.kind == "function" and r.params > 0)


def weighted_depth(report: ModelReport) -> int:
    """Most weighted layers on any path of the record graph (see the module docstring)."""
    depth: dict[int, int] = {-1: 0}
    best = 0
    for r in report.layers:  # records are in execution order: producers come first
        d = max((depth.get(i, 0) for i in r.inputs), default=0) + (1 if is_weighted(r) else 0)
        depth[r.index] = d
        best = max(best, d)
    return best


def _is_alias(r: LayerRecord) -> bool:
    if not r.inputs:
        return False
    if r.kind == "shape" or (r.kind == "function" and r.type in _VIEW_OPS):
        return True
    return r.kind == "module" and r.type in _IDENTITY_MODULES and r.flops == 0 and r.macs == 0


@dataclass(frozen=True)
class PeakActivation:
    """Peak activation memory of one forward pass (see the module docstring for the rule)."""

    elements: int  # summed elements of the tensors alive at the peak
    bytes: int  # elements x bytes per element of the dtype
    layer: str  # the record executing at the peak ("<input>" before any layer)


def peak_activation(report: ModelReport, bytes_per_element: int = 4) -> PeakActivation:
    """Largest sum of live activation tensors at any step of the forward pass, the
    input not counted (see the module docstring)."""
    layers = report.layers
    n = len(layers)
    root: dict[int, int] = {-1: -1}
    size: dict[int, int] = {-1: 0}  # the input: the caller's, alive throughout
    last_use: dict[int, int] = {-1: -1}
    for r in layers:
        if _is_alias(r):
            root[r.index] = root.get(r.inputs[0], r.inputs[0])
        else:
            root[r.index] = r.index
            size[r.index] = r.activations
            last_use[r.index] = r.index
        for i in r.inputs:  # reading a view keeps the viewed tensor alive
            src = root.get(i, i)
            last_use[src] = max(last_use.get(src, -1), r.index)
    consumed = {root.get(i, i) for r in layers for i in r.inputs}
    for t in size:
        if t != -1 and t not in consumed:
            last_use[t] = n  # a model output: alive to the end
    if -1 not in consumed:
        last_use[-1] = n
    # Sweep: +size at the producer's step, -size after its last use.
    delta = [0] * (n + 2)
    for t, s in size.items():
        start = max(t, 0)
        delta[start] += s
        delta[min(last_use[t], n) + 1] -= s
    live, peak, at = 0, 0, -1
    for step in range(n + 1):
        live += delta[step]
        if live > peak:
            peak, at = live, step
    name = layers[at].name if 0 <= at < n else ("<input>" if n == 0 or at < 0 else "<output>")
    return PeakActivation(elements=peak, bytes=peak * bytes_per_element, layer=name)


def receptive_field(report: ModelReport) -> tuple[tuple[int | None, ...] | None, str | None]:
    """Receptive field (per spatial axis) of the last feature map, and a note when absent.

    Comes from ``cnnscope.analysis.receptive_field``; the value is None (shown as "-")
    with a note saying why when that analysis is missing or fails on this model.
    """
    try:
        from cnnscope.analysis.receptive_field import last_feature_map_rf
    except ImportError:
        return None, "receptive field: analysis not available in this install"
    try:
        value = last_feature_map_rf(report)
    except Exception as exc:  # an analysis failure must not sink the comparison
        return None, f"{report.model}: receptive field failed ({type(exc).__name__}: {exc})"
    if value is None:
        return None, f"{report.model}: no spatial feature map, so no receptive field"
    return tuple(value), None


# ---------------------------------------------------------------------- the comparison


@dataclass(frozen=True)
class BenchFigures:
    """Measured timing of one model (from ``cnnscope.benchmark``)."""

    device: str  # "cpu", "cuda:0"
    latency_ms: float  # median time of one forward pass of the batch
    throughput: float  # samples per second at that batch
    device_name: str = ""  # "NVIDIA H100 80GB HBM3", the CPU model


@dataclass(frozen=True)
class ModelSummary:
    """One column of ``cnnscope compare``: a model's headline figures."""

    model: str
    input_size: tuple[int, ...]
    batch: int
    totals: Any  # records.Totals
    dtype: str
    param_bytes: int
    depth: int
    receptive_field: Any  # whatever the receptive-field analysis reports; None: "-"
    peak: PeakActivation
    output_shapes: tuple[tuple[int, ...], ...]
    bench: BenchFigures | None = None

    def to_dict(self) -> dict[str, Any]:
        t = self.totals
        return {
            "model": self.model,
            "input_size": list(self.input_size),
            "batch": self.batch,
            "dtype": self.dtype,
            "totals": {
                "params": t.params,
                "trainable_params": t.trainable_params,
                "frozen_params": t.frozen_params,
                "macs": t.macs,
                "flops": t.flops,
                "activations": t.activations,
            },
            "param_bytes": self.param_bytes,
            "depth": self.depth,
            "receptive_field": _jsonable(self.receptive_field),
            "peak_activation_bytes": self.peak.bytes,
            "peak_activation_elements": self.peak.elements,
            "peak_activation_layer": self.peak.layer,
            "output_shapes": [list(s) for s in self.output_shapes],
            "bench": None if self.bench is None else {
                "device": self.bench.device, "device_name": self.bench.device_name,
                "latency_ms": self.bench.latency_ms, "throughput": self.bench.throughput},
        }


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "__dataclass_fields__"):
        from dataclasses import asdict

        return _jsonable(asdict(v))
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


# Figures a ratio row compares, with the label it prints.
RATIO_FIELDS = (("params", "params"), ("macs", "MACs"), ("flops", "FLOPs"),
                ("peak_activation_bytes", "peak act."), ("latency_ms", "latency"))


@dataclass(frozen=True)
class Comparison(Shown):
    """Every model's summary; ratios are against the first model."""

    models: tuple[ModelSummary, ...]
    dtype: str
    notes: tuple[str, ...] = field(default=())
    convention: str = CONVENTION

    @property
    def reference(self) -> ModelSummary:
        return self.models[0]

    def summary(self, m: Any) -> ModelSummary:
        """The summary of one compared model: ``m`` is a ``ModelSummary``, a model's name
        as compared (``"googlenet"``, ``"net.py:build"``), its position (0: the first),
        or anything naming one in its ``model`` attribute (a ``ModelReport``)."""
        if isinstance(m, ModelSummary):
            return m
        if isinstance(m, int) and not isinstance(m, bool):
            if -len(self.models) <= m < len(self.models):
                return self.models[m]
            raise InvalidOptionError(f"no model at position {m}: {len(self.models)} were compared")
        name = m if isinstance(m, str) else getattr(m, "model", None)
        for s in self.models:
            if isinstance(name, str) and s.model == name:
                return s
        raise InvalidOptionError(
            f"{name if isinstance(name, str) else type(m).__name__!r} is not one of the "
            "compared models", "compared: " + ", ".join(s.model for s in self.models))

    def ratios(self, m: Any) -> dict[str, float | None]:
        """``m``'s figures divided by the first model's (None where either is missing);
        ``m``: a summary, a compared model's name or position (see ``summary``)."""
        ref = _figures(self.reference)
        own = _figures(self.summary(m))
        out: dict[str, float | None] = {}
        for key, _ in RATIO_FIELDS:
            a, b = own.get(key), ref.get(key)
            out[key] = (a / b) if a is not None and b else None
        return out

    def ratio_line(self, m: Any) -> str:
        """"googlenet: 0.05x params, 0.10x MACs of vgg16"; ``m`` as for ``ratios``."""
        m = self.summary(m)
        parts = []
        for key, label in RATIO_FIELDS:
            v = self.ratios(m)[key]
            if v is not None:
                parts.append(f"{format_ratio(v)} {label}")
        return f"{m.model}: {', '.join(parts)} of {self.reference.model}"

    def to_dict(self) -> dict[str, Any]:
        models = []
        for m in self.models:
            d = m.to_dict()
            d["ratio_to_first"] = self.ratios(m)
            models.append(d)
        return {"reference": self.reference.model, "dtype": self.dtype, "models": models,
                "convention": self.convention, "notes": list(self.notes)}

    def to_pandas(self):
        """One row per model: the flat figures (totals spread into columns)."""
        import pandas as pd

        return pd.DataFrame([flat_row(self, m) for m in self.models])


def _figures(m: ModelSummary) -> dict[str, float | None]:
    return {"params": m.totals.params, "macs": m.totals.macs, "flops": m.totals.flops,
            "peak_activation_bytes": m.peak.bytes,
            "latency_ms": m.bench.latency_ms if m.bench else None}


def format_ratio(v: float) -> str:
    """0.0506 -> '0.05x', 12.34 -> '12.3x', 0.0012 -> '0.0012x'."""
    if v == 0:
        return "0x"
    if v >= 10:
        return f"{v:.1f}x"
    if v >= 0.01:
        return f"{v:.2f}x"
    return f"{v:.2g}x"


def flat_row(c: Comparison, m: ModelSummary) -> dict[str, Any]:
    """A model's figures as one flat dict of scalars (CSV and DataFrame row)."""
    t = m.totals
    rf = m.receptive_field
    row: dict[str, Any] = {
        "model": m.model,
        "input_size": "x".join(map(str, m.input_size)),
        "batch": m.batch,
        "params": t.params,
        "trainable_params": t.trainable_params,
        "param_bytes": m.param_bytes,
        "dtype": m.dtype,
        "macs": t.macs,
        "flops": t.flops,
        "depth": m.depth,
        "receptive_field": "x".join(map(str, rf)) if isinstance(rf, (list, tuple)) else rf,
        "peak_activation_bytes": m.peak.bytes,
        "activations": t.activations,
        "output_shape": ";".join("x".join(map(str, s)) for s in m.output_shapes),
        "latency_ms": m.bench.latency_ms if m.bench else None,
        "throughput": m.bench.throughput if m.bench else None,
    }
    for key, value in c.ratios(m).items():
        row[f"{key}_ratio"] = value
    return row


def model_summary(report: ModelReport, dtype: str = "float32",
              bench: BenchFigures | None = None) -> tuple[ModelSummary, list[str]]:
    """A report's comparison column, and notes on figures that could not be derived."""
    name, nbytes = dtype_bytes(dtype)
    rf, note = receptive_field(report)
    summary = ModelSummary(
        model=report.model,
        input_size=tuple(report.input_size),
        batch=report.batch,
        totals=report.totals,
        dtype=name,
        param_bytes=report.totals.params * nbytes,
        depth=weighted_depth(report),
        receptive_field=rf,
        peak=peak_activation(report, nbytes),
        output_shapes=tuple(report.output_shapes),
        bench=bench,
    )
    return summary, [note] if note else []


def compare_reports(reports: Sequence[ModelReport], dtype: str = "float32",
                    benches: Sequence[BenchFigures | None] | None = None) -> Comparison:
    """Build the comparison of already-traced reports (the first is the reference)."""
    if not reports:
        raise InvalidOptionError("nothing to compare", "name at least one model")
    name, _ = dtype_bytes(dtype)
    benches = list(benches) if benches is not None else [None] * len(reports)
    models, notes = [], []
    for report, b in zip(reports, benches):
        m, n = model_summary(report, name, b)
        models.append(m)
        notes.extend(x for x in n if x not in notes)
    # Two models with one display name (same spec at two sizes) get told apart.
    seen: dict[str, int] = {}
    for i, m in enumerate(models):
        seen[m.model] = seen.get(m.model, 0) + 1
        if seen[m.model] > 1:
            models[i] = replace(m, model=f"{m.model}#{seen[m.model]}")
    return Comparison(models=tuple(models), dtype=name, notes=tuple(notes))
