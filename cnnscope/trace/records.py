"""The record types that flow from the tracer to every table, file and comparison.

This module imports no torch: renderers and analyses read these plain dataclasses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from cnnscope.results import LayerKind, Shown, render

Shape = tuple[int, ...]

MODEL_INPUT = -1  # the producer index of the model's input tensors in LayerRecord.inputs

# Convention text printed under every table and written into every file.
CONVENTION = (
    "params: trainable + frozen nn.Parameters (buffers such as batch-norm running stats "
    "excluded). MACs: multiply-accumulates of convolutions (incl. grouped, depthwise, "
    "transposed), linear layers and matmuls; biases excluded (the papers' and torchvision's "
    "convention). FLOPs: 2 x MACs + bias adds + elementwise work (batch norm, activations, "
    "pooling, additions, upsampling; see docs/conventions.md). bytes_moved: "
    "input activations + parameters + output activations of each layer call, each tensor "
    "counted once at its dtype (the minimal-traffic roofline convention: no re-reads, "
    "buffers or workspace; grouped rows add their layers'); arithmetic intensity = "
    "FLOPs / bytes_moved."
)


@dataclass(frozen=True)
class LayerRecord:
    """One layer call: an nn module from torch.nn, or a torch op called outside one.

    ``kind`` is "module" (a leaf torch.nn layer, e.g. Conv2d), "function" (an op in a
    forward(): residual add, cat, matmul, interpolate) or "shape" (a view/reshape/
    flatten: no cost, kept because receptive-field analysis must see it). ``inputs``
    lists the indices of the records that produced this record's tensor inputs (-1 is the
    model input), which makes the records a dataflow graph.
    """

    index: int
    name: str  # qualified name: "layer1.0.conv1", "layer1.0.add"
    type: str  # module class ("Conv2d") or op name ("add", "cat", "bmm")
    kind: LayerKind  # module | function | shape (a plain string is converted)
    inputs: tuple[int, ...]  # producer record indices; -1 = model input
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    params: int = 0  # own parameters, counted at the first call only
    trainable_params: int = 0
    macs: int = 0
    flops: int = 0
    activations: int = 0  # elements of the output tensor(s)
    # Input activations + parameters + outputs, each tensor once, in bytes at its dtype.
    bytes_moved: int = 0
    call_index: int = 0  # 0 for the first call of a module, 1 for its second call...
    kernel_size: tuple[int, ...] | None = None
    stride: tuple[int, ...] | None = None
    padding: tuple[int, ...] | None = None
    dilation: tuple[int, ...] | None = None
    groups: int | None = None
    # Anything else a layer's geometry needs (transposed, output_padding, ceil_mode,
    # scale_factor, cat dim, slice bounds...), as sorted (key, value) pairs.
    extra: tuple[tuple[str, Any], ...] = ()
    unsupported: tuple[str, ...] = ()  # ops inside this layer with no cost formula
    # Counted backward work of this layer (cnnscope.trace.backward); None: not counted.
    backward_macs: int | None = None
    backward_flops: int | None = None

    def __post_init__(self) -> None:
        # The tracer and tests pass the plain string; the record always holds the enum.
        if type(self.kind) is not LayerKind:
            object.__setattr__(self, "kind", LayerKind(self.kind))

    @property
    def attrs(self) -> dict[str, Any]:
        """``extra`` as a dict."""
        return dict(self.extra)

    @property
    def arithmetic_intensity(self) -> float | None:
        """FLOPs per byte moved (None for a layer that moves nothing: a view, Identity)."""
        return self.flops / self.bytes_moved if self.bytes_moved else None

    @property
    def depth(self) -> int:
        """Nesting depth of the name: "layer1.0.conv1" -> 3."""
        return self.name.count(".") + 1


@dataclass(frozen=True)
class Totals:
    """Whole-model sums. ``params`` counts every parameter of the model once."""

    params: int
    trainable_params: int
    macs: int
    flops: int
    activations: int  # sum of layer output elements (a proxy for activation memory)
    # Counted backward work (training traces); None when the backward was not counted.
    backward_macs: int | None = None
    backward_flops: int | None = None

    @property
    def frozen_params(self) -> int:
        return self.params - self.trainable_params


_BUILD_PATHS = {
    "meta": "built on the meta device",
    "cpu-skip-init": "built on the CPU without initialisation (its builder computes with "
                     "tensors), then moved to the meta device",
    "cpu-random-init": "built on the CPU with random weights (seed 0)",
    "cpu": "built on the CPU",
    "cuda": "built on CUDA",
}


@dataclass(frozen=True)
class ModelReport(Shown):
    """Everything one trace measured, ready for any renderer or analysis."""

    model: str  # zoo name or user-given spec
    input_size: Shape  # C x H x W (or any per-sample shape)
    batch: int
    device: str  # "meta" unless real tensors were asked for
    layers: tuple[LayerRecord, ...]
    totals: Totals
    output_shapes: tuple[Shape, ...]
    # op name -> number of calls, for ops with no cost formula (never silently zero).
    unsupported: tuple[tuple[str, int], ...] = ()
    # Parameters that no layer consumed in the forward pass (e.g. auxiliary heads in eval).
    unused_params: int = 0
    counter: str = "cnnscope"
    convention: str = CONVENTION
    notes: tuple[str, ...] = field(default=())
    # (qualified name, class name) of every module, for grouping rows by module.
    module_types: tuple[tuple[str, str], ...] = ()
    # How the model was built ("meta"; "cpu-skip-init": on the CPU without initialisation,
    # then moved to meta; "cpu-random-init": on the CPU with random weights) and the
    # data-dependent ops that made the trace run on real values ("" / () when not known).
    build_path: str = ""
    data_dependent: tuple[str, ...] = ()
    # Every input's per-sample shape, one per forward argument (input_size is the first).
    input_sizes: tuple[Shape, ...] = ()
    # The records that produced the forward's output tensors, in output order (the
    # dataflow graph's sinks; ``cnnscope graph`` draws its output node from them).
    output_producers: tuple[int, ...] = ()

    def path_note(self) -> str:
        """How the model was built and where it was traced, in words (``--verbose``)."""
        built = _BUILD_PATHS.get(self.build_path, f"built: {self.build_path or 'as given'}")
        return f"{built}; traced on {self.device}."

    def visible_layers(self) -> list[LayerRecord]:
        """Layers a table shows: everything but zero-cost shape bookkeeping."""
        return [r for r in self.layers if r.kind != "shape"]

    def table_layers(self) -> list[LayerRecord]:
        """The rows of every layer table, file and frame (``visible_layers()``).

        ``layers`` is the raw trace: it also holds the ``kind == "shape"`` records (view,
        reshape, flatten called as a function), which cost nothing and exist so the
        receptive-field analysis can follow the dataflow. How many there are depends on
        how a forward() is written (``x.view`` vs ``nn.Flatten``), not on the network, so
        no table, CSV, JSON or DataFrame shows them.
        """
        return self.visible_layers()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: top-level ``totals`` and a ``layers`` list (exact integers)."""
        return {
            "model": self.model,
            "input_size": list(self.input_size),
            "input_sizes": [list(s) for s in (self.input_sizes or (self.input_size,))],
            "batch": self.batch,
            "device": self.device,
            "counter": self.counter,
            "convention": self.convention,
            "output_shapes": [list(s) for s in self.output_shapes],
            "totals": {
                "params": self.totals.params,
                "trainable_params": self.totals.trainable_params,
                "frozen_params": self.totals.frozen_params,
                "macs": self.totals.macs,
                "flops": self.totals.flops,
                "activations": self.totals.activations,
                **({"backward_macs": self.totals.backward_macs,
                    "backward_flops": self.totals.backward_flops}
                   if self.totals.backward_macs is not None else {}),
            },
            "unused_params": self.unused_params,
            "unsupported_ops": dict(self.unsupported),
            "notes": list(self.notes),
            "build_path": self.build_path,
            "data_dependent_ops": list(self.data_dependent),
            "layers": [layer_to_dict(r) for r in self.table_layers()],
        }

    def to_pandas(self):
        """A pandas DataFrame of ``table_layers()``: the columns of ``LAYER_COLUMNS``.

        The same rows and columns as ``to_csv()``, ``to_dict()["layers"]`` and
        ``cnnscope layers --format csv``. Shapes stay tuples; a missing value is ``<NA>``
        (``pd.NA``) in every column, one representation (no ``None`` beside ``''``);
        ``unsupported`` is comma-joined, as in the CSV, in a ``string`` column. pandas is
        imported here, not at module import.
        """
        import pandas as pd

        frame = pd.DataFrame([_pandas_row(r, pd.NA) for r in self.table_layers()],
                             columns=list(LAYER_COLUMNS))
        frame["groups"] = frame["groups"].astype("Int64")  # <NA> stays <NA>, not a float NaN
        frame["unsupported"] = frame["unsupported"].astype("string")
        for key in frame.columns:  # a number column with a gap: nullable, not object
            values = [v for v in frame[key] if v is not pd.NA]
            if frame[key].dtype == object and values and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                kind = "Int64" if all(isinstance(v, int) for v in values) else "Float64"
                frame[key] = frame[key].astype(kind)
        frame.attrs["model"] = self.model
        frame.attrs["input_size"] = tuple(self.input_size)
        frame.attrs["batch"] = self.batch
        return frame

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """The layer table as CSV: what ``cnnscope params --format csv`` writes (the one
        layer schema, ``LAYER_COLUMNS``, a line per ``table_layers()`` row).

        Returns the text; with ``path`` also writes it there atomically.
        """
        return _rendered(self, "csv", path)

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """``to_dict()`` as JSON, what ``cnnscope params --format json`` writes (indented,
        a layer a line); with ``path`` also writes it there atomically."""
        return _rendered(self, "json", path)


def _rendered(report: ModelReport, format: str, path: str | os.PathLike[str] | None) -> str:
    """The report's text from its renderer (``cnnscope.report.layers``), written to
    ``path`` when given."""
    text = render(report, format)
    if path is not None:
        from cnnscope.fileio import write_text_atomic

        write_text_atomic(path, text)
    return text


def layer_to_dict(r: LayerRecord) -> dict[str, Any]:
    """One layer as a flat JSON-ready dict (shapes as lists)."""
    return {
        "name": r.name,
        "type": r.type,
        "kind": r.kind,
        "input_shapes": [list(s) for s in r.input_shapes],
        "output_shape": list(r.output_shape),
        "params": r.params,
        "trainable_params": r.trainable_params,
        "macs": r.macs,
        "flops": r.flops,
        "activations": r.activations,
        "bytes_moved": r.bytes_moved,
        "arithmetic_intensity": r.arithmetic_intensity,
        "call_index": r.call_index,
        "kernel_size": list(r.kernel_size) if r.kernel_size else None,
        "stride": list(r.stride) if r.stride else None,
        "padding": list(r.padding) if r.padding else None,
        "dilation": list(r.dilation) if r.dilation else None,
        "groups": r.groups,
        "unsupported": list(r.unsupported),
        **({"backward_macs": r.backward_macs, "backward_flops": r.backward_flops}
           if r.backward_macs is not None else {}),
    }


# The one layer-table schema: the keys of ``layer_to_dict``, in order. JSON, CSV (CLI and
# report files) and pandas all take their columns from it, so a field added to
# ``layer_to_dict`` appears in every form.
LAYER_COLUMNS: tuple[str, ...] = tuple(layer_to_dict(LayerRecord(0, "", "", "module", (), (), ())))
# Appended by ``layer_to_dict`` when the backward was counted (``--train``).
BACKWARD_COLUMNS: tuple[str, ...] = ("backward_macs", "backward_flops")


def layer_columns(rows: Any) -> tuple[str, ...]:
    """The CSV header of ``rows``: ``LAYER_COLUMNS``, plus the backward columns when the
    rows carry them (a training trace)."""
    counted = any(r.backward_macs is not None for r in rows)
    return LAYER_COLUMNS + BACKWARD_COLUMNS if counted else LAYER_COLUMNS


def layer_csv_cell(value: Any) -> str:
    """One CSV cell: exact integers, full-precision floats, ``1x64x112x112`` for a shape,
    ``;`` between several shapes, ``,`` between names; a missing value is an empty cell."""
    if value is None or value == []:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        if isinstance(value[0], (list, tuple)):
            return ";".join("x".join(map(str, s)) for s in value)
        if isinstance(value[0], str):
            return ",".join(value)
        return "x".join(map(str, value))
    return str(value)


def _pandas_row(r: LayerRecord, missing: Any) -> dict[str, Any]:
    """``layer_to_dict`` with shapes as tuples, the name list comma-joined, and ``missing``
    (pandas' NA) for a value that is not there: None or an empty list."""
    row = layer_to_dict(r)
    for key, value in row.items():
        if value is None or (isinstance(value, list) and not value):
            row[key] = missing
        elif isinstance(value, list) and isinstance(value[0], str):
            row[key] = ",".join(value)
        elif isinstance(value, list) and isinstance(value[0], list):
            row[key] = tuple(tuple(s) for s in value)
        elif isinstance(value, list):
            row[key] = tuple(value)
    return row
