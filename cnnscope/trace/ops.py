"""The op table: everything cnnscope knows about an op, in one entry per name.

An entry (``OpSpec``) is keyed by the aten op's short name, as ``geometry.op_name`` gives
it (``aten.relu_.default`` -> ``relu``), or by a torch.nn layer's type name (``"Conv2d"``,
``"BatchNorm2d"``: the type of a leaf layer's record). It holds

* ``cost``: the cost formula (written in ``trace.formulas``, the registry that refuses
  duplicates; ``register_formula`` adds users' formulas and they show up here at once);
  ``free`` for data movement and views; None when the op is not counted (reported as
  unsupported, never silently zero);
* ``shape_only``: the op only re-indexes memory (view, permute...): its record is of kind
  "shape";
* ``geometry``: the reader of the spatial geometry its arguments describe
  (``trace.geometry``);
* ``rf``: its receptive-field rule (``RfRule``; the handlers live in
  ``analysis.rf_rules``); None when the analysis does not know it;
* ``meta``: its shape kernel on the meta device (``trace.meta``), or None to run
  PyTorch's own; ``data_dependent``: no meta kernel can give its output shape.

``lookup(name)`` is the one way in: a dict lookup, once per traced op. Where to add an op:
one ``_known(...)`` line below (and its formula in ``formulas.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Sequence

from cnnscope.ops import deform_conv_math as dcm
from cnnscope.trace import geometry as g
from cnnscope.trace import meta as m
from cnnscope.trace.formulas import (
    ELEMENTWISE_OPS,
    FORMULAS,
    FREE_OPS,
    SHAPE_OPS,
    Cost,
    Formula,
    Shape,
)


class RfRule(Enum):
    """How a record maps the receptive fields of its inputs to those of its output."""

    RESHAPE = "reshape"  # views, reshapes, flatten, permutes: follow each spatial dim
    WINDOW = "window"  # convolution, transposed convolution, max/avg pooling
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
    DEFORMABLE = "deformable"  # a window at learned offsets: the nominal (regular-grid) field


Reader = Callable[[str, tuple, list], dict]
Kernel = Callable[[str, Any, tuple, dict], Any]

_ZERO = Cost(0, 0)


def free(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Data movement and views: no arithmetic."""
    return _ZERO


@dataclass(frozen=True)
class OpSpec:
    """One op's row of the table (see the module docstring)."""

    name: str
    cost: Formula | None = None
    cost_wants_kwargs: bool = False  # the formula reads keyword arguments (attention masks)
    shape_only: bool = False
    geometry: Reader | None = None
    rf: RfRule | None = None
    meta: Kernel | None = None
    # A layer whose inner ops' windows are not its own (LRN pools over channels): its
    # record gets no kernel geometry from them.
    no_window: bool = False
    # Its output shape depends on the values of its input: no meta kernel can give it (a
    # failure there is explained as such).
    data_dependent: bool = False


# ---------------------------------------------------------------------- what is known, by name

_KNOWN: dict[str, dict[str, Any]] = {}


def _known(names: Any, **fields: Any) -> None:
    """Give each op in ``names`` these fields. A receptive-field rule already given to an op
    is kept: the calls below run in the precedence the analysis applies (first one wins)."""
    for name in names:
        entry = _KNOWN.setdefault(name, {})
        for key, value in fields.items():
            if key == "rf" and "rf" in entry:
                continue
            if key in entry and entry[key] is not value:
                raise ValueError(f"op table: {name!r} is given two {key}s")
            entry[key] = value


# Geometry readers.
_known({"convolution", "_convolution"}, geometry=g.read_conv)
_known({"max_pool2d_with_indices", "max_pool2d", "max_pool1d", "max_pool3d",
        "max_pool3d_with_indices", "avg_pool2d", "avg_pool1d", "avg_pool3d"},
       geometry=g.read_pool)
_known({"_adaptive_avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
        "_adaptive_avg_pool3d", "adaptive_max_pool3d"}, geometry=g.read_adaptive)
_known({"cat", "stack"}, geometry=g.read_cat)
_known({"slice"}, geometry=g.read_slice)
_known({"constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d",
        "replication_pad1d", "replication_pad2d", "replication_pad3d"}, geometry=g.read_pad)
_known({"permute"}, geometry=g.read_permute)
_known({"transpose"}, geometry=g.read_transpose)
_known({"_softmax", "_log_softmax", "softmax", "log_softmax"}, geometry=g.read_softmax_dim)
_known({"mean", "sum", "amax", "amin"}, geometry=g.read_reduced_dims)
# Every aten upsample op (forward and backward) reads its mode from its name; names
# not listed here get the same from the family rule in ``lookup``.
_UPSAMPLE_OPS = {
    "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "upsample_linear1d",
    "upsample_bilinear2d", "upsample_bicubic2d", "upsample_trilinear3d",
    "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d",
    "_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa", "_upsample_lanczos2d_aa",
}
_known(_UPSAMPLE_OPS, geometry=g.read_upsample)
_known({dcm.FORWARD_OP}, geometry=g.read_deform_conv, rf=RfRule.DEFORMABLE)
# Leaf layers whose inner ops must not lend them geometry (LRN pools over channels).
_known({"LocalResponseNorm", "CrossMapLRN2d"}, no_window=True)

# Ops whose output shape depends on the values of their input.
_known({"nonzero", "masked_select", "nms", "unique", "_unique", "_unique2", "unique_dim",
        "unique_consecutive", "_local_scalar_dense", "item", "argwhere", "repeat_interleave",
        "bincount", "histc", "masked_scatter", "batched_nms"}, data_dependent=True)

# Shape kernels on meta.
_known({"relu", "relu6", "hardtanh", "sigmoid", "tanh", "gelu", "silu", "elu", "leaky_relu",
        "hardswish", "hardsigmoid", "mish", "softplus", "neg", "abs", "exp", "sqrt", "rsqrt"},
       meta=m.unary_kernel)
_known({"add", "sub", "rsub", "mul", "div", "pow"}, meta=m.binary_kernel)
_known({"max_pool2d_with_indices", "avg_pool2d", "max_pool3d_with_indices", "avg_pool3d"},
       meta=m.pool_kernel)
_known({"upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "upsample_linear1d",
        "upsample_bilinear2d", "upsample_bicubic2d", "upsample_trilinear3d",
        "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d",
        "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d"},
       meta=m.resize_kernel)
_known({"zeros_like", "ones_like", "empty_like"}, meta=m.like_kernel)
_known({"native_batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit"},
       meta=m.batch_norm_kernel)
_known({"cat"}, meta=m.cat_kernel)
_known({"convolution"}, meta=m.conv_kernel)
_known({"constant_pad_nd"}, meta=m.pad_kernel)
_known({"_softmax"}, meta=m.softmax_kernel)
_known({"_safe_softmax"}, meta=m.safe_softmax_kernel)
_known({"native_layer_norm"}, meta=m.layer_norm_kernel)
_known({"roll"}, meta=m.roll_kernel)
_known({"index"}, meta=m.index_kernel)
_known({"addmm"}, meta=m.addmm_kernel)
_known({"mm", "bmm"}, meta=m.matmul_kernel)
_known({"mean", "sum"}, meta=m.reduce_kernel)

# Receptive-field rules, in the analysis' order of precedence (the first rule given to a
# name is its rule). The analysis reads a record's own geometry first: any record with a
# kernel is a WINDOW, one with an adaptive output size ADAPTIVE, one with an
# interpolation mode RESIZE (see analysis.rf_rules.rule_of).
_known(SHAPE_OPS | {"Flatten", "Unflatten"}, rf=RfRule.RESHAPE)
_known({"Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
        "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d",
        "LazyConvTranspose3d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d",
        "AvgPool3d", "LPPool1d", "LPPool2d", "LPPool3d", "convolution", "_convolution",
        "max_pool2d_with_indices", "max_pool2d", "max_pool1d", "max_pool3d",
        "max_pool3d_with_indices", "avg_pool2d", "avg_pool1d", "avg_pool3d"}, rf=RfRule.WINDOW)
_known({"AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
        "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "_adaptive_avg_pool2d", "adaptive_avg_pool2d",
        "adaptive_max_pool2d", "_adaptive_avg_pool3d", "adaptive_max_pool3d"}, rf=RfRule.ADAPTIVE)
_known({"Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"} | _UPSAMPLE_OPS,
       rf=RfRule.RESIZE)
_known({"PixelShuffle", "pixel_shuffle", "PixelUnshuffle", "pixel_unshuffle"},
       rf=RfRule.PIXEL_SHUFFLE)
_known({"slice"}, rf=RfRule.SLICE)
_known({"constant_pad_nd", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d",
        "ConstantPad2d", "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d",
        "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d",
        "CircularPad1d", "CircularPad2d", "CircularPad3d", "reflection_pad1d",
        "reflection_pad2d", "reflection_pad3d", "replication_pad1d", "replication_pad2d",
        "replication_pad3d", "pad"}, rf=RfRule.PAD)
_known({"mean", "sum", "amax", "amin", "max", "min", "prod", "std", "var", "std_mean",
        "var_mean", "logsumexp", "argmax", "argmin", "any", "all", "norm",
        "linalg_vector_norm", "frobenius_norm"}, rf=RfRule.REDUCE)
_known({"Linear", "Bilinear", "LazyLinear", "linear", "addmm", "mm"}, rf=RfRule.LINEAR)
_known({"bmm", "baddbmm", "addbmm", "matmul", "einsum", "einsum_bmm",
        "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
        "scaled_dot_product_attention", "MultiheadAttention",
        "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_fused_attention_overrideable", "_native_multi_head_attention"},
       rf=RfRule.MIX_ALL)
_known({"cat", "stack"}, rf=RfRule.CAT)
_known({"select", "index", "index_select", "narrow", "gather", "repeat", "flip", "roll",
        "unfold", "im2col", "col2im", "grid_sampler_2d", "as_strided"},
       rf=RfRule.OPAQUE_IF_SPATIAL)
# Layers whose output at a position also depends on statistics of the whole map.
_known({"GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LazyInstanceNorm1d",
        "LazyInstanceNorm2d", "LazyInstanceNorm3d", "native_group_norm", "instance_norm"},
       rf=RfRule.CONTEXT)
_known({"LayerNorm", "native_layer_norm"}, rf=RfRule.LAYER_NORM)
_known({"_softmax", "softmax", "_log_softmax", "log_softmax", "_safe_softmax", "Softmax",
        "LogSoftmax", "Softmin"}, rf=RfRule.SOFTMAX)
# Leaf layers and ops that act on each spatial position separately.
_known({"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LazyBatchNorm1d",
        "LazyBatchNorm2d", "LazyBatchNorm3d", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU",
        "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh", "Hardtanh",
        "Hardswish", "Hardsigmoid", "Softplus", "Softsign", "Softshrink", "Hardshrink",
        "Tanhshrink", "Threshold", "LogSigmoid", "GLU", "Dropout", "Dropout1d", "Dropout2d",
        "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "Identity", "LocalResponseNorm",
        "CrossMapLRN2d", "ChannelShuffle", "Softmax2d"}, rf=RfRule.POINTWISE)
_known(set(ELEMENTWISE_OPS) | {
    "clone", "copy", "_to_copy", "to", "contiguous", "alias", "detach", "dropout",
    "feature_dropout", "alpha_dropout", "native_dropout", "masked_fill", "fill",
    "zeros_like", "ones_like", "empty_like", "full_like", "lift_fresh_copy",
    "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "batch_norm", "cudnn_batch_norm", "_batch_norm_impl_index", "channel_shuffle",
    "split", "split_with_sizes", "chunk", "unbind"}, rf=RfRule.POINTWISE)


# ---------------------------------------------------------------------- the table


def _family(name: str) -> dict[str, Any]:
    """Fields every op of a named family has (any aten upsample op, whatever its variant)."""
    if g.UPSAMPLE_RE.match(name):
        return {"geometry": g.read_upsample, "rf": RfRule.RESIZE}
    return {}


def _build(name: str) -> OpSpec | None:
    fields = {**_family(name), **_KNOWN.get(name, {})}
    if name in SHAPE_OPS:
        fields.update(cost=free, shape_only=True)
    elif name in FREE_OPS:
        fields["cost"] = free  # free wins over a formula of the same name, as it always has
    elif name in FORMULAS:
        formula = FORMULAS[name]
        fields.update(cost=formula, cost_wants_kwargs=bool(getattr(formula, "wants_kwargs", False)))
    return OpSpec(name, **fields) if fields else None


#: Every op cnnscope knows, by name.
OPS: dict[str, OpSpec] = {}


def _refresh(name: str) -> None:
    """Rebuild one entry (a formula was registered, replaced or removed)."""
    spec = _build(name)
    if spec is None:
        OPS.pop(name, None)
    else:
        OPS[name] = spec


for _name in (*_KNOWN, *SHAPE_OPS, *FREE_OPS, *FORMULAS):
    _refresh(_name)
FORMULAS.listeners.append(_refresh)


def lookup(name: str) -> OpSpec | None:
    """Everything known about op (or layer type) ``name``; None when nothing is."""
    spec = OPS.get(name)
    if spec is None and g.UPSAMPLE_RE.match(name):  # a family member not listed above
        spec = _build(name)
    return spec


# ---------------------------------------------------------------------- uses of one entry


def op_cost(spec: OpSpec | None, args: Sequence[Any], outs: Sequence[Shape],
            kwargs: dict | None = None) -> Cost | None:
    """The entry's cost (``None``: no formula, an unsupported op)."""
    if spec is None or spec.cost is None:
        return None
    if spec.cost_wants_kwargs:
        return spec.cost(args, outs, kwargs)  # type: ignore[call-arg]
    return spec.cost(args, outs)


def geometry(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """Kernel/stride/padding/dilation/groups and extras of a geometry-bearing op."""
    spec = lookup(name)
    if spec is None or spec.geometry is None:
        return {}
    return spec.geometry(name, args, out_shapes)


def fast_meta_op(name: str, func, args: tuple, kwargs: dict) -> Any:
    """The op's result computed from shapes alone, or ``NotImplemented`` to run it normally."""
    spec = lookup(name)
    if spec is None or spec.meta is None:
        return NotImplemented
    return m.run_kernel(spec.meta, name, func, args, kwargs)


def describe(name: str) -> dict[str, Any]:
    """The entry as plain names (for reading the table, e.g. in a REPL or a test)."""
    spec = lookup(name)
    if spec is None:
        return {"name": name}
    return {
        "name": name,
        "cost": None if spec.cost is None else spec.cost.__name__,
        "shape_only": spec.shape_only,
        "geometry": None if spec.geometry is None else spec.geometry.__name__,
        "rf": None if spec.rf is None else spec.rf.value,
        "meta": None if spec.meta is None else spec.meta.__name__,
        "no_window": spec.no_window,
        "data_dependent": spec.data_dependent,
    }

