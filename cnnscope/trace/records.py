"""The record types that flow from the tracer to every table, file and comparison.

This module imports no torch: renderers and analyses read these plain dataclasses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int, ...]

# Convention text printed under every table and written into every file.
CONVENTION = (
    "params: trainable + frozen nn.Parameters (buffers such as batch-norm running stats "
    "excluded). MACs: multiply-accumulates of convolutions (incl. grouped, depthwise, "
    "transposed), linear layers and matmuls; biases excluded (the papers' and torchvision's "
    "convention). FLOPs: 2 x MACs + bias adds + elementwise work (batch norm, activations, "
    "pooling, additions, upsampling; see README 'Counting conventions')."
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
    kind: str  # "module" | "function" | "shape"
    inputs: tuple[int, ...]  # producer record indices; -1 = model input
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    params: int = 0  # own parameters, counted at the first call only
    trainable_params: int = 0
    macs: int = 0
    flops: int = 0
    activations: int = 0  # elements of the output tensor(s)
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

    @property
    def attrs(self) -> dict[str, Any]:
        """``extra`` as a dict."""
        return dict(self.extra)

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
class ModelReport:
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

    def path_note(self) -> str:
        """How the model was built and where it was traced, in words (``--verbose``)."""
        built = _BUILD_PATHS.get(self.build_path, f"built: {self.build_path or 'as given'}")
        return f"{built}; traced on {self.device}."

    def visible_layers(self) -> list[LayerRecord]:
        """Layers a table shows: everything but zero-cost shape bookkeeping."""
        return [r for r in self.layers if r.kind != "shape"]

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
            },
            "unused_params": self.unused_params,
            "unsupported_ops": dict(self.unsupported),
            "notes": list(self.notes),
            "build_path": self.build_path,
            "data_dependent_ops": list(self.data_dependent),
            "layers": [layer_to_dict(r) for r in self.visible_layers()],
        }

    def to_pandas(self):
        """A pandas DataFrame, one row per visible layer (the columns of ``layer_to_dict``).

        Shapes stay tuples; ``to_csv`` writes them as ``1x64x112x112``. pandas is imported
        here, not at module import.
        """
        import pandas as pd

        rows = []
        for r in self.visible_layers():
            row = layer_to_dict(r)
            for key in ("output_shape", "kernel_size", "stride", "padding", "dilation"):
                row[key] = tuple(row[key]) if row[key] is not None else None
            row["input_shapes"] = tuple(tuple(s) for s in row["input_shapes"])
            row["unsupported"] = ",".join(row["unsupported"])
            rows.append(row)
        columns = list(layer_to_dict(self.layers[0]).keys()) if self.layers else None
        frame = pd.DataFrame(rows, columns=columns)
        frame["groups"] = frame["groups"].astype("Int64")  # None stays <NA>, not a float NaN
        frame.attrs["model"] = self.model
        frame.attrs["input_size"] = tuple(self.input_size)
        frame.attrs["batch"] = self.batch
        return frame

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """The layer table as CSV (exact integers; shapes as ``1x64x112x112``).

        Returns the text; with ``path`` also writes it there atomically.
        """
        frame = self.to_pandas()

        def dims(v: Any) -> str:
            if v is None or (isinstance(v, float) and v != v):
                return ""
            if v and isinstance(v[0], tuple):
                return ";".join("x".join(map(str, s)) for s in v)
            return "x".join(map(str, v))

        for key in ("input_shapes", "output_shape", "kernel_size", "stride", "padding", "dilation"):
            frame[key] = frame[key].map(dims)
        text = frame.to_csv(index=False, lineterminator="\n")
        if path is not None:
            from cnnscope.report.io import write_text_atomic

            write_text_atomic(path, text)
        return text

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """``to_dict()`` as indented JSON; with ``path`` also writes it there atomically."""
        import json

        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            from cnnscope.report.io import write_text_atomic

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
        "call_index": r.call_index,
        "kernel_size": list(r.kernel_size) if r.kernel_size else None,
        "stride": list(r.stride) if r.stride else None,
        "padding": list(r.padding) if r.padding else None,
        "dilation": list(r.dilation) if r.dilation else None,
        "groups": r.groups,
        "unsupported": list(r.unsupported),
    }
