"""The op registry (cnnscope.ops): one entry per op, the same behaviour as the if-chains
it replaced, and the output-size arithmetic (ops.outsize) against PyTorch itself.

The expected values below are written by hand from the code the table replaced (commit
4dc2f9c: geometry.py's and meta.py's if-chains and name sets, rf_rules.apply_rule's branches
and sets); none is read from the table under test.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from cnnscope.analysis.rf_rules import rule_of
from cnnscope.ops import conv, elementwise, linear, norm, reduction, resize, shape
from cnnscope.ops import registry as formulas
from cnnscope.ops import registry as ops
from cnnscope.ops.cost import Cost
from cnnscope.ops.cost import TensorShape as T
from cnnscope.ops.entry import RfRule
from cnnscope.ops.outsize import conv_output_size, transposed_output_size
from cnnscope.ops.registry import lookup
from cnnscope.trace.records import LayerRecord

# ---------------------------------------------------------------------- receptive-field rules

# rf_rules' sets before the table, in apply_rule's order of precedence (the first branch that
# names a type is its rule).
_OLD_ELEMENTWISE = (
    "add", "sub", "rsub", "mul", "div", "neg", "abs", "sign", "reciprocal", "square",
    "relu", "relu6", "hardtanh", "leaky_relu", "elu", "selu", "celu", "gelu", "silu",
    "mish", "sigmoid", "tanh", "hardsigmoid", "hardswish", "softplus", "threshold",
    "_prelu_kernel", "prelu", "exp", "log", "log1p", "sqrt", "rsqrt", "pow", "erf",
    "clamp", "clamp_min", "clamp_max", "maximum", "minimum", "where", "lerp", "addcmul",
    "addcdiv", "floor", "ceil", "round", "eq", "ne", "gt", "lt", "ge", "le", "logical_not",
    "bitwise_not", "sin", "cos", "fmod", "remainder", "log_sigmoid_forward", "sgn",
    "log2", "log10", "exp2", "expm1", "bitwise_and", "bitwise_or", "bitwise_xor",
    "logical_and", "logical_or", "logical_xor", "isnan", "isinf", "isfinite", "trunc",
    "frac", "atan", "atan2", "asin", "acos", "tan", "sinh", "cosh", "asinh", "acosh",
    "atanh", "erfc", "erfinv", "hypot", "xlogy", "hardshrink", "softshrink", "tanhshrink",
    "logit", "nan_to_num", "floor_divide",
)
_OLD_SHAPE_OPS = {
    "view", "_unsafe_view", "reshape", "flatten", "unflatten", "unsqueeze", "squeeze",
    "permute", "transpose", "t", "expand", "expand_as", "as_strided", "alias", "detach",
    "contiguous", "movedim", "view_as", "_reshape_alias", "lift_fresh", "numpy_T",
}
_OLD_RULES = [
    (RfRule.RESIZE, {"Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d",
                     "upsample_nearest2d", "upsample_bilinear2d", "_upsample_nearest_exact2d",
                     "upsample_bicubic2d", "upsample_trilinear3d", "upsample_linear1d"}),
    (RfRule.PIXEL_SHUFFLE, {"PixelShuffle", "pixel_shuffle", "PixelUnshuffle", "pixel_unshuffle"}),
    (RfRule.SLICE, {"slice"}),
    (RfRule.PAD, {"constant_pad_nd", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d",
                  "ConstantPad2d", "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d",
                  "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d",
                  "CircularPad1d", "CircularPad2d", "CircularPad3d", "reflection_pad1d",
                  "reflection_pad2d", "reflection_pad3d", "replication_pad1d",
                  "replication_pad2d", "replication_pad3d", "pad"}),
    (RfRule.REDUCE, {"mean", "sum", "amax", "amin", "max", "min", "prod", "std", "var",
                     "std_mean", "var_mean", "logsumexp", "argmax", "argmin", "any", "all",
                     "norm", "linalg_vector_norm", "frobenius_norm"}),
    (RfRule.LINEAR, {"Linear", "Bilinear", "LazyLinear", "linear", "addmm", "mm"}),
    (RfRule.MIX_ALL, {"bmm", "baddbmm", "addbmm", "matmul", "einsum", "einsum_bmm",
                      "_scaled_dot_product_flash_attention",
                      "_scaled_dot_product_efficient_attention", "scaled_dot_product_attention",
                      "MultiheadAttention", "_scaled_dot_product_flash_attention_for_cpu",
                      "_scaled_dot_product_cudnn_attention",
                      "_scaled_dot_product_fused_attention_overrideable",
                      "_native_multi_head_attention"}),
    (RfRule.CAT, {"cat", "stack"}),
    (RfRule.OPAQUE_IF_SPATIAL, {"select", "index", "index_select", "narrow", "gather", "repeat",
                                "flip", "roll", "unfold", "im2col", "col2im", "grid_sampler_2d",
                                "as_strided"}),
    (RfRule.CONTEXT, {"GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
                      "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d",
                      "native_group_norm", "instance_norm"}),
    (RfRule.LAYER_NORM, {"LayerNorm", "native_layer_norm"}),
    (RfRule.SOFTMAX, {"_softmax", "softmax", "_log_softmax", "log_softmax", "_safe_softmax",
                      "Softmax", "LogSoftmax", "Softmin"}),
    (RfRule.POINTWISE, {
        "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LazyBatchNorm1d",
        "LazyBatchNorm2d", "LazyBatchNorm3d", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU",
        "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh", "Hardtanh",
        "Hardswish", "Hardsigmoid", "Softplus", "Softsign", "Softshrink", "Hardshrink",
        "Tanhshrink", "Threshold", "LogSigmoid", "GLU", "Dropout", "Dropout1d", "Dropout2d",
        "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "Identity", "LocalResponseNorm",
        "CrossMapLRN2d", "ChannelShuffle", "Softmax2d",
        *_OLD_ELEMENTWISE, "clone", "copy", "_to_copy", "to", "contiguous", "alias", "detach",
        "dropout", "feature_dropout", "alpha_dropout", "native_dropout", "masked_fill", "fill",
        "zeros_like", "ones_like", "empty_like", "full_like", "lift_fresh_copy",
        "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
        "batch_norm", "cudnn_batch_norm", "_batch_norm_impl_index", "channel_shuffle",
        "split", "split_with_sizes", "chunk", "unbind"}),
]


def _old_rule(name: str) -> RfRule:
    # The tracer makes every op of SHAPE_OPS a record of kind "shape": apply_rule's first branch.
    if name in _OLD_SHAPE_OPS or name in ("Flatten", "Unflatten"):
        return RfRule.RESHAPE
    return next(rule for rule, names in _OLD_RULES if name in names)


def _record(type_: str, kind: str | None = None, **geometry) -> LayerRecord:
    if kind is None:
        kind = "shape" if type_ in _OLD_SHAPE_OPS else ("module" if type_[0].isupper() else "function")
    extra = geometry.pop("extra", {})
    return LayerRecord(index=0, name=type_, type=type_, kind=kind, inputs=(-1,),
                       input_shapes=((1, 3, 8, 8),), output_shape=(1, 3, 8, 8),
                       extra=tuple(sorted(extra.items())), **geometry)


_NAMED = sorted(set().union(*(names for _, names in _OLD_RULES), _OLD_SHAPE_OPS,
                            {"Flatten", "Unflatten"}))


@pytest.mark.parametrize("name", _NAMED)
def test_every_type_the_old_rules_named_keeps_its_rule(name):
    assert rule_of(_record(name)) is _old_rule(name)


def test_geometry_on_the_record_comes_before_its_type():
    window = {"kernel_size": (3, 3), "stride": (1, 1), "padding": (1, 1), "dilation": (1, 1)}
    # any record with a kernel is a window ... but LRN's pooling is over channels
    assert rule_of(_record("Conv2d", **window)) is RfRule.WINDOW
    assert rule_of(_record("my_custom_op", **window)) is RfRule.WINDOW
    assert rule_of(_record("relu", **window)) is RfRule.WINDOW
    assert rule_of(_record("LocalResponseNorm", **window)) is RfRule.POINTWISE
    assert rule_of(_record("CrossMapLRN2d", **window)) is RfRule.POINTWISE
    # a shape record is a reshape whatever else it carries
    assert rule_of(_record("view", kind="shape", **window)) is RfRule.RESHAPE
    assert rule_of(_record("Flatten", **window)) is RfRule.RESHAPE
    assert rule_of(_record("mean", extra={"adaptive": True})) is RfRule.ADAPTIVE
    assert rule_of(_record("AdaptiveAvgPool2d", extra={"adaptive": True})) is RfRule.ADAPTIVE
    assert rule_of(_record("slice", extra={"mode": "nearest"})) is RfRule.RESIZE
    # any aten upsample op, listed or not
    assert rule_of(_record("_upsample_something_new2d")) is RfRule.RESIZE
    assert rule_of(_record("upsample_nearest2d_backward")) is RfRule.RESIZE


def test_window_and_adaptive_types_without_their_geometry_are_unknown():
    # apply_rule never named these: without a kernel or an output size they fell through
    for name in ("Conv2d", "MaxPool2d", "convolution", "AdaptiveAvgPool2d", "adaptive_avg_pool1d"):
        assert rule_of(_record(name)) is None, name


def test_unknown_types_keep_the_fallback_and_its_warning():
    from cnnscope.analysis.receptive_field import receptive_fields
    from cnnscope.trace.tracer import trace_module

    class Odd(nn.Module):
        def forward(self, x):
            return torch.special.bessel_j0(x)

    report = trace_module(Odd(), (1, 8, 8))
    assert rule_of(report.layers[-1]) is None
    rf = receptive_fields(report)
    assert any("not known to this analysis" in w for w in rf.warnings)
    assert rf.layers[-1].receptive_field == (1, 1)  # assumed to act on each position


def test_every_zoo_record_type_has_a_rule_and_no_unknown_warning(zoo_report):
    from cnnscope.analysis.receptive_field import receptive_fields
    from cnnscope.zoo import list_models

    unknown = set()
    for model in list_models():
        report = zoo_report(model)
        unknown |= {r.type for r in report.layers if rule_of(r) is None}
        rf = receptive_fields(report)
        assert not [w for w in rf.warnings if "not known to this analysis" in w], model
    assert not unknown


# ---------------------------------------------------------------------- costs


@pytest.mark.parametrize("name", sorted(_OLD_SHAPE_OPS))
def test_shape_ops_are_free_views(name):
    spec = lookup(name)
    assert spec.shape_only
    assert ops.op_cost(spec, (T((2, 3)),), [(2, 3)]) == Cost(0, 0)


_OLD_FREE_OPS = {
    "cat", "stack", "clone", "copy", "_to_copy", "to", "slice", "select", "index",
    "index_select", "narrow", "split", "split_with_sizes", "chunk", "unbind", "gather",
    "constant_pad_nd", "pad", "reflection_pad2d", "replication_pad2d", "repeat",
    "zeros", "zeros_like", "ones", "ones_like", "empty", "empty_like", "full", "full_like",
    "new_zeros", "new_ones", "new_empty", "new_full", "fill", "arange", "scalar_tensor",
    "scatter", "one_hot", "roll", "flip", "masked_fill", "index_put", "_index_put_impl",
    "native_dropout_backward", "dropout", "feature_dropout", "alpha_dropout",
    "empty_strided", "resize", "set", "sym_size", "sym_stride", "sym_numel",
    "_local_scalar_dense", "lift_fresh_copy", "embedding",
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle",
    "im2col", "unfold", "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk",
    "zero", "tril", "triu", "linspace", "logspace",
}


@pytest.mark.parametrize("name", sorted(_OLD_FREE_OPS))
def test_free_ops_cost_nothing_and_keep_their_own_record(name):
    spec = lookup(name)
    assert not spec.shape_only
    assert ops.op_cost(spec, (T((2, 3)),), [(2, 3)]) == Cost(0, 0)


def test_every_formula_is_its_entrys_cost():
    for name, formula in formulas.FORMULAS.items():
        if name in _OLD_FREE_OPS or name in _OLD_SHAPE_OPS:
            continue
        assert lookup(name).cost is formula, name


def test_costs_read_through_the_table():
    x = T((1, 3, 8, 8))
    w = T((16, 3, 3, 3))
    conv = ops.op_cost(lookup("convolution"), (x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1),
                       [(1, 16, 8, 8)])
    assert conv == Cost(16 * 8 * 8 * 3 * 3 * 3, 2 * 16 * 8 * 8 * 3 * 3 * 3)
    assert ops.op_cost(lookup("relu"), (x,), [(1, 3, 8, 8)]) == Cost(0, 3 * 8 * 8)
    q = T((2, 4, 5, 8))
    sdpa = lookup("scaled_dot_product_attention")
    assert sdpa.cost_wants_kwargs
    masked = ops.op_cost(sdpa, (q, q, q), [(2, 4, 5, 8)], {"attn_mask": T((5, 5))})
    plain = ops.op_cost(sdpa, (q, q, q), [(2, 4, 5, 8)], {})
    assert masked.flops - plain.flops == 2 * 4 * 5 * 5  # one add per score for the mask
    assert lookup("no_such_op") is None
    assert ops.op_cost(None, (x,), [(1,)]) is None


def test_register_formula_shows_up_in_the_table_and_leaves_with_it():
    import cnnscope

    assert lookup("my_scan_for_table") is None
    try:
        cnnscope.register_formula("mylib::my_scan_for_table", lambda args, outs: (1, 2))
        spec = lookup("my_scan_for_table")
        assert ops.op_cost(spec, (T((3,)),), [(3,)]) == Cost(1, 2)
        cnnscope.register_formula("my_scan_for_table", lambda args, outs: (5, 6))  # a re-run
        assert ops.op_cost(lookup("my_scan_for_table"), (), []) == Cost(5, 6)
    finally:
        formulas.FORMULAS.pop("my_scan_for_table", None)
        formulas._USER_OPS.discard("my_scan_for_table")
    assert lookup("my_scan_for_table") is None
    # a built-in replaced, then restored by hand (as the register_formula tests do)
    original = formulas.FORMULAS["relu"]
    try:
        cnnscope.register_formula("relu", lambda args, outs: (0, 5), replace=True)
        assert ops.op_cost(lookup("relu"), (T((3,)),), [(3,)]) == Cost(0, 5)
    finally:
        formulas.FORMULAS["relu"] = original
        formulas._USER_OPS.discard("relu")
        formulas._revision[0] += 1
    assert lookup("relu").cost is original
    assert lookup("relu").meta is elementwise.unary_kernel  # the rest of the entry is untouched


# ---------------------------------------------------------------------- geometry

_CONV_ARGS = (T((1, 3, 9, 9)), T((8, 3, 3, 5)), None, [2, 1], [1, 2], [1, 1], False, [0, 0], 1)


@pytest.mark.parametrize("name", ["convolution", "_convolution"])
def test_convolution_geometry(name):
    # aten.convolution(input, weight, bias, stride, padding, dilation, transposed,
    # output_padding, groups)
    assert ops.geometry(name, _CONV_ARGS, [(1, 8, 5, 9)]) == {
        "kernel_size": (3, 5), "stride": (2, 1), "padding": (1, 2), "dilation": (1, 1), "groups": 1}
    transposed = (*_CONV_ARGS[:6], True, [1, 0], 1)
    assert ops.geometry(name, transposed, [(1, 8, 5, 9)])["extra"] == {
        "transposed": True, "output_padding": (1, 0)}


@pytest.mark.parametrize("name", ["max_pool2d_with_indices", "max_pool2d", "max_pool1d",
                                  "max_pool3d", "max_pool3d_with_indices", "avg_pool2d",
                                  "avg_pool1d", "avg_pool3d", "max_pool1d_with_indices"])
def test_pool_geometry(name):
    nd = 3 if "3d" in name else (1 if "1d" in name else 2)
    is_max = name.startswith("max")
    args = (T((1, 3, 9, 9)), [3] * nd, [2] * nd, 1, *((1, True) if is_max else (True,)))
    got = ops.geometry(name, args, [(1, 3, 5, 5)])
    assert got["kernel_size"] == (3,) * nd and got["stride"] == (2,) * nd
    assert got["padding"] == (1,) * nd and got["dilation"] == (1,) * nd
    assert got["extra"] == {"ceil_mode": True, "pool": "max" if is_max else "avg"}


@pytest.mark.parametrize("name", ["_adaptive_avg_pool2d", "adaptive_avg_pool2d",
                                  "adaptive_max_pool2d", "_adaptive_avg_pool3d",
                                  "adaptive_max_pool3d", "adaptive_avg_pool1d",
                                  "adaptive_max_pool1d"])
def test_adaptive_geometry(name):
    assert ops.geometry(name, (T((1, 3, 9, 9)), [2, 2]), [(1, 3, 2, 2)]) == {
        "extra": {"output_size": (2, 2), "adaptive": True}}


@pytest.mark.parametrize("name, mode", [
    ("upsample_nearest2d", "nearest"), ("_upsample_nearest_exact2d", "nearest-exact"),
    ("upsample_bilinear2d", "bilinear"), ("upsample_trilinear3d", "trilinear"),
    ("upsample_bicubic2d", "bicubic"), ("upsample_linear1d", "linear"),
    # the mode is the name with its rank stripped ("123d" off the end), also for a backward
    ("upsample_nearest2d_backward", "nearest2d_backwar"),
    ("_upsample_made_up_op", "made_up_op"),
])
def test_upsample_geometry_for_the_whole_family(name, mode):
    extra = ops.geometry(name, (T((1, 3, 4, 4)), [8, 8], False), [(1, 3, 8, 8)])["extra"]
    assert extra == {"mode": mode, "output_size": (8, 8), "align_corners": False}


def test_data_movement_geometry():
    x = T((1, 3, 4, 4))
    assert ops.geometry("cat", ([x, x], 1), [(1, 6, 4, 4)]) == {"extra": {"dim": 1}}
    assert ops.geometry("stack", ([x, x],), [(2, 1, 3, 4, 4)]) == {"extra": {"dim": 0}}
    assert ops.geometry("slice", (x, 2, 1, 3), [(1, 3, 2, 4)]) == {
        "extra": {"dim": 2, "start": 1, "end": 3, "step": 1}}
    for name in ("constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d",
                 "replication_pad1d", "replication_pad2d", "replication_pad3d"):
        assert ops.geometry(name, (x, [1, 2, 0, 1]), [(1, 3, 5, 7)]) == {"extra": {"pad": (1, 2, 0, 1)}}
    assert ops.geometry("permute", (x, [0, 2, 3, 1]), [(1, 4, 4, 3)]) == {"extra": {"dims": (0, 2, 3, 1)}}
    assert ops.geometry("transpose", (x, 1, 3), [(1, 4, 4, 3)]) == {"extra": {"dims": (1, 3)}}
    for name in ("_softmax", "_log_softmax", "softmax", "log_softmax"):
        assert ops.geometry(name, (x, -1, False), [(1, 3, 4, 4)]) == {"extra": {"dim": -1}}
    for name in ("mean", "sum", "amax", "amin"):
        assert ops.geometry(name, (x, [2, 3], True), [(1, 3, 1, 1)]) == {"extra": {"dim": (2, 3)}}
        assert ops.geometry(name, (x,), [()]) == {}


# max_pool1d_with_indices and adaptive_avg_pool1d had none before the registry (drift:
# a windowed op with a cost and no geometry); their geometry is tested below.
@pytest.mark.parametrize("name", ["relu", "add", "view", "max", "reflection_pad4d",
                                  "Conv2d", "no_such_op"])
def test_ops_without_geometry(name):
    assert ops.geometry(name, (T((1, 3, 4, 4)), [1, 1]), [(1, 3, 4, 4)]) == {}


# ---------------------------------------------------------------------- meta shape kernels

_OLD_KERNELS = {
    elementwise.unary_kernel: {"relu", "relu6", "hardtanh", "sigmoid", "tanh", "gelu", "silu", "elu",
                        "leaky_relu", "hardswish", "hardsigmoid", "mish", "softplus", "neg",
                        "abs", "exp", "sqrt", "rsqrt"},
    elementwise.binary_kernel: {"add", "sub", "rsub", "mul", "div", "pow"},
    "pool_kernel": {"max_pool2d_with_indices", "avg_pool2d", "max_pool3d_with_indices",
                       "avg_pool3d"},
    resize.resize_kernel: {"upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
                         "upsample_linear1d", "upsample_bilinear2d", "upsample_bicubic2d",
                         "upsample_trilinear3d", "_upsample_nearest_exact1d",
                         "_upsample_nearest_exact2d", "_upsample_nearest_exact3d",
                         "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d"},
    shape.like_kernel: {"zeros_like", "ones_like", "empty_like"},
    norm.batch_norm_kernel: {"native_batch_norm", "_native_batch_norm_legit_no_training",
                             "_native_batch_norm_legit"},
    shape.cat_kernel: {"cat"},
    # _convolution: the same aten layout as convolution, in the same entry since the registry
    conv.conv_kernel: {"convolution", "_convolution"},
    shape.pad_kernel: {"constant_pad_nd"},
    reduction.softmax_kernel: {"_softmax"},
    reduction.safe_softmax_kernel: {"_safe_softmax"},
    norm.layer_norm_kernel: {"native_layer_norm"},
    shape.roll_kernel: {"roll"},
    shape.index_kernel: {"index"},
    linear.addmm_kernel: {"addmm"},
    linear.matmul_kernel: {"mm", "bmm"},
    reduction.reduce_kernel: {"mean", "sum"},
}


# Added for the backward counter (tests/trace/test_backward_kernels.py checks their results
# against PyTorch's): every alias of the backward entries of activations, batch norm and
# softmax.
_BACKWARD_KERNELS = {
    elementwise.grad_like_kernel: {
        "threshold_backward", "hardtanh_backward", "leaky_relu_backward",
        "rrelu_with_noise_backward", "sigmoid_backward", "tanh_backward", "gelu_backward",
        "silu_backward", "elu_backward", "softplus_backward", "mish_backward",
        "hardswish_backward", "hardsigmoid_backward", "log_sigmoid_backward"},
    norm.batch_norm_backward_kernel: {"native_batch_norm_backward", "cudnn_batch_norm_backward",
                                      "miopen_batch_norm_backward", "batch_norm_backward"},
    reduction.softmax_backward_kernel: {"_softmax_backward_data", "_log_softmax_backward_data"},
}


def test_meta_kernels_are_where_the_old_chain_had_them():
    for kernel, names in {**_OLD_KERNELS, **_BACKWARD_KERNELS}.items():
        for name in names:
            if kernel == "pool_kernel":  # one kernel, bound to max or average per entry
                assert lookup(name).meta.__name__ == kernel, name
                assert lookup(name).meta.keywords == {"is_max": name.startswith("max")}, name
            else:
                assert lookup(name).meta is kernel, name
    with_kernel = {name for name, spec in ops.OPS.items() if spec.meta is not None}
    assert with_kernel == set().union(*_OLD_KERNELS.values(), *_BACKWARD_KERNELS.values())


def test_fast_meta_op_only_for_meta_tensors():
    x = torch.empty(2, 3, device="meta")
    out = ops.fast_meta_op("relu", torch.ops.aten.relu.default, (x,), {})
    assert out.shape == (2, 3) and out.device.type == "meta"
    cpu = torch.zeros(2, 3)
    assert ops.fast_meta_op("relu", torch.ops.aten.relu.default, (cpu,), {}) is NotImplemented
    assert ops.fast_meta_op("gelu", torch.ops.aten.gelu.default, (x,), {"out": x}) is NotImplemented
    assert ops.fast_meta_op("max", torch.ops.aten.max.default, (x,), {}) is NotImplemented
    # cat takes a list first; nothing else may
    assert ops.fast_meta_op("cat", torch.ops.aten.cat.default, ([x, x], 0), {}).shape == (4, 3)
    assert ops.fast_meta_op("relu", torch.ops.aten.relu.default, ([x],), {}) is NotImplemented


def test_data_dependent_ops_are_the_tracers_old_list():
    old = {"nonzero", "masked_select", "nms", "unique", "_unique", "_unique2", "unique_dim",
           "unique_consecutive", "_local_scalar_dense", "item", "argwhere", "repeat_interleave",
           "bincount", "histc", "masked_scatter", "batched_nms"}
    assert {name for name, spec in ops.OPS.items() if spec.data_dependent} == old


def test_a_copy_of_the_formula_registry_is_a_plain_dict():
    import copy

    clone = copy.copy(formulas.FORMULAS)
    assert type(clone) is dict and clone == dict(formulas.FORMULAS)
    clone["my_copy_only_op"] = formulas.FORMULAS["relu"]  # tells the table nothing
    assert lookup("my_copy_only_op") is None


# ---------------------------------------------------------------------- output sizes vs PyTorch


def _spatial(layer: nn.Module, n: int) -> int | None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            return layer(torch.zeros(1, 1, n, n)).shape[-1]
        except RuntimeError:  # PyTorch refuses: output too small
            return None


def test_conv_output_size_is_pytorchs():
    for n in (3, 4, 7, 8, 11):
        for k, s, p, d in [(1, 1, 0, 1), (3, 1, 1, 1), (3, 2, 1, 1), (3, 2, 0, 2),
                           (5, 3, 2, 1), (2, 2, 0, 1), (7, 2, 3, 1), (4, 3, 1, 2)]:
            expected = _spatial(nn.Conv2d(1, 1, k, s, p, d, bias=False), n)
            got = conv_output_size(n, k, s, p, d)
            assert (got if got >= 1 else None) == expected, (n, k, s, p, d)


def test_ceil_mode_pooling_output_size_is_pytorchs():
    for n in (3, 4, 5, 6, 7, 8, 9, 12, 13):
        for k, s, p, d in [(2, 2, 0, 1), (3, 2, 0, 1), (3, 2, 1, 1), (3, 3, 1, 1), (2, 3, 1, 1),
                           (5, 4, 2, 1), (3, 2, 1, 2)]:
            for ceil in (False, True):
                expected = _spatial(nn.MaxPool2d(k, s, p, d, ceil_mode=ceil), n)
                got = conv_output_size(n, k, s, p, d, ceil)
                assert (got if got >= 1 else None) == expected, (n, k, s, p, d, ceil)


def test_transposed_output_size_is_pytorchs():
    for n in (1, 2, 5, 8):
        for k, s, p, d, op in [(2, 2, 0, 1, 0), (3, 2, 1, 1, 1), (4, 2, 1, 1, 0), (3, 1, 1, 1, 0),
                               (3, 3, 0, 2, 1), (5, 2, 2, 1, 1)]:
            layer = nn.ConvTranspose2d(1, 1, k, s, p, op, bias=False, dilation=d)
            got = transposed_output_size(n, k, s, p, d, op)
            assert got == _spatial(layer, n), (n, k, s, p, d, op)
