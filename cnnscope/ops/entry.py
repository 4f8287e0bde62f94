"""One entry of the op registry (``OpEntry``): everything cnnscope knows about a group of ops.

An entry is named by every alias it answers to: aten short names, as ``names.op_name``
gives them (``aten.relu_.default`` -> ``relu``), and torch.nn layer type names
(``"Conv2d"``: the type of a leaf layer's record). The ops of one entry share one argument
layout, read by ONE parser that the entry's cost, geometry and meta kernel all use.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from cnnscope.ops.cost import Formula


class RfRule(Enum):
    """How a record maps the receptive fields of its inputs to those of its output.

    The handler of each kind lives in ``cnnscope.analysis.rf_rules``, keyed by the kind.
    """

    RESHAPE = "reshape"  # views, reshapes, flatten, permutes: follow each spatial dim
    WINDOW = "window"  # convolution, transposed convolution, max/avg pooling
    DEFORMABLE = "deformable"  # a window at learned offsets: the nominal (regular-grid) field
    ADAPTIVE = "adaptive"  # adaptive pooling: windows from input and output sizes
    RESIZE = "resize"  # interpolation (nearest, linear, area...)
    PIXEL_SHUFFLE = "pixel_shuffle"  # sub-pixel shuffle and unshuffle
    SLICE = "slice"  # a crop or strided slice along one dim
    PAD = "pad"  # padding: shifts the grid
    REDUCE = "reduce"  # mean, sum, max... over some dims
    LINEAR = "linear"  # a fully connected layer: mixes the last dim
    MIX_ALL = "mix_all"  # matrix products, attention: every position with every other
    CAT = "cat"  # concatenation and stacking
    OPAQUE_IF_SPATIAL = "opaque_if_spatial"  # gathers, rolls...: understood off the spatial dims only
    POINTWISE = "pointwise"  # each position on its own (activations, batch norm, copies)
    CONTEXT = "context"  # pointwise plus statistics of the whole map (group/instance norm)
    SOFTMAX = "softmax"  # pointwise unless it normalises over a spatial dim
    LAYER_NORM = "layer_norm"  # pointwise unless its last (normalised) dim is spatial


# reader(name, args, out_shapes) -> {"kernel_size": ..., "stride": ..., "extra": {...}}
Reader = Callable[[str, tuple, list], dict]
# kernel(name, func, args, kwargs) -> the op's meta result from shapes, or NotImplemented
Kernel = Callable[[str, Any, tuple, dict], Any]

# Stated reasons for an entry whose forward cost has no backward entry of its own.
BACKWARD_IS_A_BACKWARD = "a backward op: training never takes its gradient"
BACKWARD_PASSES_THROUGH = ("the gradient is its forward op again (an add, a mul, a view of "
                           "the gradient), counted by that op's entry")
BACKWARD_NOT_DIFFERENTIABLE = "its output carries no gradient (a comparison, an index, a count)"


@dataclass(frozen=True, eq=False)
class OpEntry:
    """One group of ops and all that is known about them.

    ``cost(args, out_shapes) -> Cost`` gets the positional arguments with tensors as
    ``TensorShape``; ``free`` for data movement and views; None when not counted (an
    unsupported op, never silently zero). ``backward`` names the backward ops whose
    entries count this op's gradient, or says in words why none does.
    """

    names: tuple[str, ...]
    cost: Formula | None = None
    cost_wants_kwargs: bool = False  # the formula reads keyword arguments (attention masks)
    backward: tuple[str, ...] | str = ()
    shape_only: bool = False  # only re-indexes memory (view, permute...): a "shape" record
    geometry: Reader | None = None  # the spatial geometry its arguments describe
    rf: RfRule | None = None  # None: the receptive-field analysis does not know it
    meta: Kernel | None = None  # its shape kernel on meta; None: PyTorch's own
    # Its kernel's results are PyTorch's meta results to the stride (shape, strides, dtype,
    # storage size) wherever it does not decline: the memory planner, which counts storages
    # and whose later views or copies depend on strides, takes them too
    # (tests/trace/test_exact_meta_kernels.py holds each one to PyTorch's).
    meta_exact: bool = False
    # A layer whose inner ops' windows are not its own (LRN pools over channels): its
    # record gets no kernel geometry from them.
    no_window: bool = False
    # Its output shape depends on the values of its input: no meta kernel can give it.
    data_dependent: bool = False
    weighted: bool = False  # a layer the papers count in depth (conv, linear, matmul)
    # What torch.autocast does to the torch functions in ``torch_functions``: "low"
    # (runs in the low precision) or "fp32".
    autocast: str | None = None
    torch_functions: tuple[Any, ...] = ()
    fvcore: str | None = None  # fvcore's operator key when fvcore counts its multiply-adds

    @property
    def is_layer(self) -> bool:
        """An entry of torch.nn layer types: its records' geometry and cost come from the
        ops the layer runs, read by those ops' entries."""
        return all(n[:1].isupper() for n in self.names)

    @property
    def name(self) -> str:
        """The entry's first alias, its name in messages."""
        return self.names[0]


def entry(names: Any, **fields: Any) -> OpEntry:
    """An ``OpEntry`` for ``names`` (any iterable of strings, kept in the order given)."""
    names = (names,) if isinstance(names, str) else tuple(dict.fromkeys(names))
    return OpEntry(names, **fields)
