"""Cost of one op from its shapes: a table of small pure functions.

Each formula takes the op's positional arguments, with every tensor replaced by its
shape (a ``TensorShape``), and the shapes of its tensor outputs, and returns
``Cost(macs, flops)``. No torch here: the tracer translates tensors into shapes.

Conventions (docs/conventions.md explains them with a worked example):

* MACs count multiply-accumulates of convolutions (grouped, depthwise and transposed
  included), linear layers and matrix products. Biases are not MACs.
* FLOPs = 2 x MACs + one FLOP per bias add + the elementwise work of every other op:

  - unary/binary elementwise ops (add, mul, relu, sigmoid, ...): 1 per output element
  - batch norm: 2 per element at inference (a folded scale and shift), 4 in training
    (batch statistics + normalisation)
  - max/avg pooling: one per window element per output element (k*k per output);
    adaptive pooling: one per input element
  - reductions (sum, mean, amax): one per input element; vector norms: 2 per input
    element (square + add)
  - softmax: 3 per element (exp, sum, divide)
  - interpolation: nearest 0 (a copy); linear 3, bilinear 7, trilinear 15, bicubic 31
    per output element (2^d multiplies + 2^d - 1 adds for the d-linear weights)
  - data movement (cat, slice, pad, copy) and views: 0

The backward ops of a training step (``convolution_backward``, ``native_batch_norm_backward``,
``threshold_backward`` ...) are in the same table; ``cnnscope.trace.backward`` explains
their conventions.

Ops with no entry here and not known as free are reported as unsupported by the
tracer, never silently counted as zero.
"""

from __future__ import annotations

from math import prod
from typing import Any, Callable, Sequence

from cnnscope.ops import deform_conv_math as dcm
from cnnscope.trace.formula_result import Cost, as_cost

Shape = tuple[int, ...]


class TensorShape(tuple):
    """The shape of a tensor argument (a tuple subclass, so it reads like a shape)."""

    @property
    def numel(self) -> int:
        return prod(self)


Formula = Callable[[Sequence[Any], Sequence[Shape]], Cost]



class _Registry(dict):
    """A dict that tells its listeners which name changed, however it is written
    (``register``, ``register_formula``, or a test restoring an entry by hand): the op
    table (``trace.ops``) keeps each op's formula in its entry and must not go stale."""

    def __init__(self) -> None:
        super().__init__()
        self.listeners: list[Callable[[str], None]] = []

    def _changed(self, *names: str) -> None:
        for listener in self.listeners:
            for name in names:
                listener(name)

    def __setitem__(self, name: str, formula: Formula) -> None:
        super().__setitem__(name, formula)
        self._changed(name)

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        self._changed(name)

    def pop(self, name: str, *default: Any) -> Any:
        had = name in self
        value = super().pop(name, *default)
        if had:
            self._changed(name)
        return value

    def setdefault(self, name: str, formula: Formula) -> Formula:  # type: ignore[override]
        if name not in self:
            self[name] = formula
        return self[name]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for name, formula in dict(*args, **kwargs).items():
            self[name] = formula

    def popitem(self) -> tuple[str, Formula]:
        name, formula = super().popitem()
        self._changed(name)
        return name, formula

    def clear(self) -> None:
        names = list(self)
        super().clear()
        self._changed(*names)

    def __reduce__(self) -> Any:  # a copy or a pickle is a plain dict; listeners stay here
        return (dict, (dict(self),))


#: Cost formulas by op name (the op table, ``trace.ops``, refers to them).
FORMULAS: _Registry = _Registry()


def register(*names: str) -> Callable[[Formula], Formula]:
    """Register one formula for one or more op names; a name registered twice is an error."""

    def decorator(fn: Formula) -> Formula:
        for name in names:
            if name in FORMULAS or name in FREE_OPS or name in SHAPE_OPS:
                raise ValueError(f"a cost formula for {name!r} is already registered")
            FORMULAS[name] = fn
        return fn

    return decorator


# Ops that only re-index memory: they cost nothing and keep the data's identity.
SHAPE_OPS = frozenset({
    "view", "_unsafe_view", "reshape", "flatten", "unflatten", "unsqueeze", "squeeze",
    "permute", "transpose", "t", "expand", "expand_as", "as_strided", "alias", "detach",
    "contiguous", "movedim", "view_as", "_reshape_alias", "lift_fresh", "numpy_T",
})

# Ops that move or create data without arithmetic: zero cost, but they are layers of the
# dataflow (a concatenation, a crop) and keep their own record.
FREE_OPS = frozenset({
    "cat", "stack", "clone", "copy", "_to_copy", "to", "slice", "select", "index",
    "index_select", "narrow", "split", "split_with_sizes", "chunk", "unbind", "gather",
    "constant_pad_nd", "pad", "reflection_pad2d", "replication_pad2d", "repeat",
    "zeros", "zeros_like", "ones", "ones_like", "empty", "empty_like", "full", "full_like",
    "new_zeros", "new_ones", "new_empty", "new_full", "fill", "arange", "scalar_tensor",
    "scatter", "one_hot", "roll", "flip", "masked_fill", "index_put", "_index_put_impl",
    "native_dropout_backward", "dropout", "feature_dropout", "alpha_dropout",
    "empty_strided", "resize", "set", "sym_size", "sym_stride", "sym_numel",
    "_local_scalar_dense", "lift_fresh_copy", "embedding",
    # Rearrangements: sub-pixel shuffles, patch extraction, the LSTM/GRU gate splits.
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle",
    "im2col", "unfold", "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk",
    "zero", "tril", "triu", "linspace", "logspace",
})


def _out_numel(outs: Sequence[Shape]) -> int:
    return prod(outs[0]) if outs else 0


def _tensor_args(args: Sequence[Any]) -> list[TensorShape]:
    return [a for a in args if isinstance(a, TensorShape)]


# ---------------------------------------------------------------- multiply-accumulate ops


@register("convolution", "_convolution", "conv2d", "conv1d", "conv3d", "cudnn_convolution",
          "mkldnn_convolution", "conv_transpose2d", "conv_transpose1d", "conv_transpose3d")
def conv_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Convolution: each output element is a dot product over (C_in/groups) x kernel.

    Transposed convolution scatters each input element over (C_out/groups) x kernel
    outputs, so its MACs are counted from the input side.
    aten.convolution(input, weight, bias, stride, padding, dilation, transposed, ...).
    """
    x, w = args[0], args[1]
    bias = args[2] if len(args) > 2 else None
    transposed = bool(args[6]) if len(args) > 6 and isinstance(args[6], bool) else False
    per_element = prod(w[1:])  # (C_in/groups or C_out/groups) * kernel elements
    macs = prod(x) * per_element if transposed else _out_numel(outs) * per_element
    bias_adds = _out_numel(outs) if isinstance(bias, TensorShape) else 0
    return Cost(macs, 2 * macs + bias_adds)


@register(dcm.FORWARD_OP)
def deform_conv_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """torchvision::deform_conv2d (``deform_conv_math`` counts it)."""
    return dcm.forward_cost(dcm.parse(args))


@register(dcm.BACKWARD_OP)
def deform_conv_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """torchvision::_deform_conv2d_backward (``deform_conv_math`` counts it)."""
    return dcm.backward_cost(dcm.parse(args, backward=True))


@register("addmm")
def addmm_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """bias + (M x K) @ (K x N): M*K*N MACs, plus M*N bias adds."""
    _, a, b = args[0], args[1], args[2]
    macs = a[0] * a[1] * b[1]
    return Cost(macs, 2 * macs + a[0] * b[1])


@register("mm")
def mm_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """(M x K) @ (K x N): M*K*N MACs."""
    a, b = args[0], args[1]
    macs = a[0] * a[1] * b[1]
    return Cost(macs, 2 * macs)


@register("bmm")
def bmm_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Batched (B x M x K) @ (B x K x N): B*M*K*N MACs."""
    a, b = args[0], args[1]
    macs = a[0] * a[1] * a[2] * b[2]
    return Cost(macs, 2 * macs)


@register("baddbmm", "addbmm")
def baddbmm_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """bias + batched product: B*M*K*N MACs plus one add per output element."""
    a, b = args[1], args[2]
    macs = a[0] * a[1] * a[2] * b[2]
    return Cost(macs, 2 * macs + _out_numel(outs))


@register("matmul", "linear", "einsum_bmm")
def matmul_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Generic matmul/linear (seen only if not decomposed): output elements x inner size."""
    tensors = _tensor_args(args)
    a = tensors[0]
    macs = _out_numel(outs) * a[-1]
    bias = tensors[2] if len(tensors) > 2 else None
    return Cost(macs, 2 * macs + (_out_numel(outs) if bias is not None else 0))


# ---------------------------------------------------------------- elementwise ops

ELEMENTWISE_OPS = (
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


@register(*ELEMENTWISE_OPS)
def elementwise_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """One FLOP per output element."""
    return Cost(0, _out_numel(outs))


@register("_native_batch_norm_legit_no_training")
def batch_norm_eval_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Inference batch norm folds into one scale and one shift: 2 per element."""
    return Cost(0, 2 * _out_numel(outs))


@register("native_batch_norm", "_native_batch_norm_legit", "batch_norm",
          "_batch_norm_impl_index", "cudnn_batch_norm")
def batch_norm_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Batch norm: 2 per element with running statistics (eval), 4 when it computes them.

    aten.native_batch_norm(input, weight, bias, running_mean, running_var, training, ...).
    """
    training = args[5] if len(args) > 5 and isinstance(args[5], bool) else True
    return Cost(0, (4 if training else 2) * _out_numel(outs))


@register("native_layer_norm", "native_group_norm", "instance_norm")
def norm_with_statistics_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Normalisation with statistics from the data: mean, variance, scale, shift: 4 per element."""
    return Cost(0, 4 * _out_numel(outs))


@register("native_dropout", "bernoulli")
def dropout_train_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Training-mode dropout: draw a mask and scale: 2 per element (bernoulli: the draw
    of a dropout mask written as bernoulli + mul on some devices, also 2 per element)."""
    return Cost(0, 2 * _out_numel(outs))


# ---------------------------------------------------------------- pooling


def _window(args: Sequence[Any]) -> int:
    kernel = args[1]
    return prod(kernel) if isinstance(kernel, (list, tuple)) else int(kernel) ** 2


@register("max_pool2d_with_indices", "max_pool2d", "max_pool1d", "max_pool3d",
          "max_pool3d_with_indices", "max_pool1d_with_indices", "avg_pool2d", "avg_pool1d",
          "avg_pool3d", "mkldnn_max_pool2d")
def pool_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """One FLOP (compare or add) per window element per output element."""
    return Cost(0, _out_numel(outs) * _window(args))


@register("_adaptive_avg_pool2d", "adaptive_avg_pool2d", "_adaptive_avg_pool3d",
          "adaptive_avg_pool1d", "adaptive_max_pool2d", "adaptive_max_pool1d",
          "adaptive_max_pool3d")
def adaptive_pool_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Adaptive pooling visits every input element once (exact for non-overlapping windows)."""
    return Cost(0, prod(args[0]))


# ---------------------------------------------------------------- reductions, softmax


@register("sum", "mean", "amax", "amin", "max", "min", "prod", "argmax", "argmin",
          "logsumexp", "cumsum", "any", "all", "var", "std", "var_mean", "std_mean")
def reduction_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """One FLOP per input element (for a binary max/min: one per output element)."""
    tensors = _tensor_args(args)
    if len(tensors) >= 2:  # aten.max(a, b) elementwise form
        return Cost(0, _out_numel(outs))
    return Cost(0, prod(tensors[0]) if tensors else 0)


@register("linalg_vector_norm", "norm", "frobenius_norm")
def norm_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Square and accumulate every input element (2 each), then one root per output."""
    return Cost(0, 2 * prod(args[0]) + _out_numel(outs))


@register("_softmax", "softmax", "_log_softmax", "log_softmax", "_safe_softmax")
def softmax_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """exp, sum, divide: 3 per element."""
    return Cost(0, 3 * _out_numel(outs))


# ---------------------------------------------------------------- interpolation


@register("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
          "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d")
def nearest_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Nearest-neighbour upsampling copies: no arithmetic."""
    return Cost(0, 0)


def _interp(flops_per_output: int) -> Formula:
    def cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
        return Cost(0, flops_per_output * _out_numel(outs))

    cost.__doc__ = f"{flops_per_output} FLOPs per output element."
    return cost


register("upsample_linear1d")(_interp(3))
register("upsample_bilinear2d", "_upsample_bilinear2d_aa", "grid_sampler_2d")(_interp(7))
register("upsample_trilinear3d")(_interp(15))
register("upsample_bicubic2d", "_upsample_bicubic2d_aa")(_interp(31))


# ---------------------------------------------------------------- backward ops
# What autograd dispatches in a backward pass (cnnscope.trace.backward counts it); the
# conventions are in that module's docstring and docs/training.md.


def _numel(outs: Sequence[Shape]) -> int:
    return prod(outs[0]) if outs else 0


def _mask(value: Any, n: int = 3) -> list[bool]:
    if isinstance(value, (list, tuple)) and len(value) == n:
        return [bool(v) for v in value]
    return [True] * n


@register("convolution_backward")
def conv_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """aten.convolution_backward(grad_out, input, weight, bias_sizes, stride, padding,
    dilation, transposed, output_padding, groups, output_mask)."""
    grad_out, x, w = args[0], args[1], args[2]
    transposed = bool(args[7]) if len(args) > 7 else False
    mask = _mask(args[10] if len(args) > 10 else None)
    per_element = prod(w[1:])
    forward_macs = prod(x) * per_element if transposed else prod(grad_out) * per_element
    macs = forward_macs * (int(mask[0]) + int(mask[1]))
    bias_adds = prod(grad_out) if mask[2] and args[3] is not None else 0
    return Cost(macs, 2 * macs + bias_adds)


def _norm_backward(x: TensorShape, mask: list[bool], training: bool) -> Cost:
    n = prod(x)
    flops = 0
    if mask[1] or mask[2] or (mask[0] and training):
        flops += 2 * n  # x̂ = (x - mean) * invstd
        flops += 3 * n  # sum g and sum g·x̂ (the weight and bias gradients need nothing more)
    if mask[0]:
        flops += 4 * n if training else n
    return Cost(0, flops)


@register("native_batch_norm_backward", "cudnn_batch_norm_backward",
          "miopen_batch_norm_backward", "batch_norm_backward")
def batch_norm_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """native_batch_norm_backward(grad_out, input, weight, running_mean, running_var,
    save_mean, save_invstd, train, eps, output_mask)."""
    training = bool(args[7]) if len(args) > 7 and isinstance(args[7], bool) else True
    return _norm_backward(args[1], _mask(args[9] if len(args) > 9 else None), training)


@register("native_layer_norm_backward")
def layer_norm_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """native_layer_norm_backward(grad_out, input, normalized_shape, mean, rstd, weight,
    bias, output_mask): statistics from the data, as batch norm in training."""
    return _norm_backward(args[1], _mask(args[7] if len(args) > 7 else None), True)


@register("native_group_norm_backward")
def group_norm_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """native_group_norm_backward(grad_out, input, mean, rstd, weight, N, C, HxW, group,
    output_mask)."""
    return _norm_backward(args[1], _mask(args[9] if len(args) > 9 else None), True)


def _per_grad_element(n: int):
    def cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
        return Cost(0, n * prod(args[0]))

    cost.__doc__ = f"{n} FLOP(s) per gradient element."
    return cost


register("threshold_backward", "hardtanh_backward", "leaky_relu_backward",
         "rrelu_with_noise_backward", "max_pool2d_with_indices_backward",
         "max_pool3d_with_indices_backward", "upsample_nearest1d_backward",
         "upsample_nearest2d_backward", "upsample_nearest3d_backward",
         "_upsample_nearest_exact1d_backward", "_upsample_nearest_exact2d_backward",
         "_upsample_nearest_exact3d_backward", "adaptive_max_pool2d_backward",
         "adaptive_max_pool3d_backward")(_per_grad_element(1))
register("sigmoid_backward", "tanh_backward")(_per_grad_element(3))
register("gelu_backward", "silu_backward", "elu_backward", "softplus_backward",
         "mish_backward", "hardswish_backward", "hardsigmoid_backward",
         "log_sigmoid_backward")(_per_grad_element(4))
register("_softmax_backward_data", "_log_softmax_backward_data")(_per_grad_element(4))


@register("avg_pool2d_backward", "avg_pool3d_backward", "avg_pool1d_backward")
def avg_pool_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """avg_pool2d_backward(grad_out, input, kernel, ...): each gradient element is spread
    over its window: one per window element per gradient element."""
    kernel = args[2]
    window = prod(kernel) if isinstance(kernel, (list, tuple)) else int(kernel) ** 2
    return Cost(0, prod(args[0]) * window)


@register("_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d_backward")
def adaptive_avg_pool_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """One per input-gradient element."""
    return Cost(0, _numel(outs))


def _interp_backward(per_output: int):
    def cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
        return Cost(0, per_output * prod(args[0]))

    cost.__doc__ = f"{per_output} FLOPs per gradient element, as the forward."
    return cost


register("upsample_linear1d_backward")(_interp_backward(3))
register("upsample_bilinear2d_backward", "_upsample_bilinear2d_aa_backward")(_interp_backward(7))
register("upsample_trilinear3d_backward")(_interp_backward(15))
register("upsample_bicubic2d_backward", "_upsample_bicubic2d_aa_backward")(_interp_backward(31))

# Zero-filled copies: the gradient of a crop or of one element of a stack.
_FREE_BACKWARD = frozenset({"slice_backward", "select_backward", "index_select_backward",
                            "unfold_backward", "as_strided_scatter", "slice_scatter",
                            "select_scatter", "new_zeros", "zero", "zeros_like"})
for _name in _FREE_BACKWARD:
    if _name not in FREE_OPS:
        register(_name)(lambda args, outs: Cost(0, 0))


# ---------------------------------------------------------------- overlap-add, selection


@register("col2im")
def col2im_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Fold (col2im) sums overlapping patches: one add per input element."""
    return Cost(0, prod(args[0]))


@register("nonzero", "argwhere", "topk", "masked_select", "_unique2", "unique",
          "_unique", "unique_dim", "unique_consecutive", "searchsorted", "bucketize",
          "bincount", "histc")
def selection_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Selection and counting (nonzero, topk, unique...): one comparison per input element."""
    return Cost(0, prod(args[0]))


@register("sort", "argsort")
def sort_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Sorting n elements along a dim: n * ceil(log2 n) comparisons per sorted row."""
    x = args[0]
    if not x:
        return Cost(0, 0)
    dim = args[1] if len(args) > 1 and isinstance(args[1], int) else -1
    n = x[dim]
    rows = prod(x) // n if n else 0
    return Cost(0, rows * n * max(1, (n - 1).bit_length()))


# One IoU of two boxes: 4 min/max, 2 widths, 2 clamps, 3 products, 2 adds/subs, 1 divide.
IOU_FLOPS = 14


@register("nms", "batched_nms")
def nms_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Non-maximum suppression of N boxes: a sort plus at most one IoU per pair.

    An upper bound: the kernel skips pairs whose first box is already suppressed, which
    depends on the scores.
    """
    n = args[0][0] if args and args[0] else 0
    return Cost(0, n * max(1, (n - 1).bit_length()) + IOU_FLOPS * n * (n - 1) // 2)


@register("roi_align", "_roi_align")
def roi_align_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """RoIAlign: each output averages s x s bilinear samples (7 FLOPs each, as bilinear
    upsampling) plus one divide; s = sampling_ratio (2 when adaptive, torchvision's
    detection default). roi_align(input, rois, scale, ph, pw, sampling_ratio, aligned)."""
    s = args[5] if len(args) > 5 and isinstance(args[5], int) and args[5] > 0 else 2
    return Cost(0, _out_numel(outs) * (7 * s * s + 1))


@register("roi_pool", "_roi_pool")
def roi_pool_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """RoIPool: a max over each bin; counted as one compare per output (bins vary by box)."""
    return Cost(0, _out_numel(outs))


# ---------------------------------------------------------------- recurrent layers

# Elementwise FLOPs per hidden unit per step of the unfused cell (what the meta device
# runs): LSTM 3 sigmoid + 2 tanh + 3 mul + 1 add; GRU 2 sigmoid + 1 tanh + 3 mul + 4 add/sub;
# plain RNN one activation.
_RNN_CELL = {2: (4, 9, True), 3: (3, 10, False), 1: (1, 1, True), 0: (1, 1, True)}


@register("mkldnn_rnn_layer")
def mkldnn_rnn_layer_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """One layer and direction of a CPU (oneDNN) LSTM/GRU/RNN over the whole sequence,
    counted as the unfused cell the meta device runs, step by step.

    mkldnn_rnn_layer(input (T, B, I), w_ih (G*H, I), w_hh (G*H, H'), b_ih, b_hh, hx, cx,
    reverse, batch_sizes, mode, hidden_size, num_layers, has_biases, ...): per step
    B*G*H*(I + H') MACs; FLOPs 2 x MACs + the bias adds (2 per gate output with biases)
    + the add of the two products (LSTM, RNN) + the cell's elementwise work.
    """
    x, w_ih, w_hh = args[0], args[1], args[2]
    mode = args[9] if len(args) > 9 and isinstance(args[9], int) else 2
    has_bias = bool(args[12]) if len(args) > 12 else True
    gates, cell, adds_products = _RNN_CELL.get(mode, _RNN_CELL[2])
    gh = w_ih[0]
    hidden = gh // gates
    steps_batch = prod(x) // x[-1]  # T * B
    macs = steps_batch * gh * (w_ih[1] + w_hh[1])
    elementwise = steps_batch * (gh * (2 * int(has_bias) + int(adds_products)) + cell * hidden)
    return Cost(macs, 2 * macs + elementwise)


# ---------------------------------------------------------------- attention


def attention_cost(batch_heads: int, l: int, s: int, e: int, ev: int, masked: bool,
                   causal: bool = False) -> Cost:
    """Scaled dot-product attention counted as its math path: the same on every device.

    softmax(Q K^T * scale + mask) V with Q (L x E), K (S x E), V (S x Ev) per batch x head:
    MACs = L*S*E (scores) + L*S*Ev (weighted sum); FLOPs = 2 x MACs + the scaling of Q
    and K (L*E + S*E: PyTorch's math path multiplies each by sqrt(scale)) + 3 per score
    for the softmax + 1 per score for an additive mask or a causal one (which the math
    path first builds with one ``where`` over L x S). Fused kernels
    (flash, memory-efficient, cuDNN) compute the same products without materialising
    the scores; their cost is counted as this, as FlopCounterMode does for MACs.
    """
    macs = batch_heads * l * s * (e + ev)
    flops = 2 * macs + batch_heads * (l * e + s * e) \
        + batch_heads * l * s * (3 + int(masked or causal)) + (l * s if causal else 0)
    return Cost(macs, flops)


def _is_tensor(v: Any) -> bool:
    return isinstance(v, TensorShape)


def _bhle(q: Sequence[int]) -> tuple[int, int, int]:
    """(B, H, L, E) or (B, L, E) or (L, E) -> (B*H, L, E)."""
    return prod(q[:-2]), q[-2], q[-1]


def _sdpa(mask_at: int | None, causal_at: int | None, mask_kw: str | None = None) -> Formula:
    def cost(args: Sequence[Any], outs: Sequence[Shape], kwargs: dict | None = None) -> Cost:
        q, k, v = args[0], args[1], args[2]
        bh, l, e = _bhle(q)
        masked = (mask_at is not None and len(args) > mask_at and _is_tensor(args[mask_at])) \
            or (mask_kw is not None and _is_tensor((kwargs or {}).get(mask_kw)))
        causal = (causal_at is not None and len(args) > causal_at and args[causal_at] is True) \
            or bool((kwargs or {}).get("is_causal"))
        return attention_cost(bh, l, k[-2], e, v[-1], masked, causal)

    cost.__doc__ = "Scaled dot-product attention on (B, H, L, E) tensors: see attention_cost."
    cost.wants_kwargs = True  # type: ignore[attr-defined]
    return cost


# q, k, v, attn_mask, dropout_p, is_causal, ... (the composite and the math path)
register("scaled_dot_product_attention", "_scaled_dot_product_attention_math",
         "_scaled_dot_product_attention_math_for_mps")(_sdpa(3, 5, "attn_mask"))
# CPU flash: q, k, v, dropout_p, is_causal, *, attn_mask, scale
register("_scaled_dot_product_flash_attention_for_cpu")(_sdpa(None, 4, "attn_mask"))
# CUDA flash: q, k, v, dropout_p, is_causal, return_debug_mask, *, scale
register("_scaled_dot_product_flash_attention")(_sdpa(None, 4))
# memory-efficient and cuDNN: q, k, v, attn_bias, compute_log_sumexp, dropout_p, is_causal
register("_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention")(
    _sdpa(3, 6))
# XPU/HPU and others: q, k, v, attn_bias, dropout_p, is_causal, ...
register("_scaled_dot_product_fused_attention_overrideable")(_sdpa(3, 5))


@register("_flash_attention_forward", "_efficient_attention_forward")
def bshe_attention_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """The kernels under the fused ops take (B, L, H, E) tensors; same count."""
    q, k, v = args[0], args[1], args[2]
    bias = args[3] if len(args) > 3 and _is_tensor(args[3]) else None
    causal = any(a is True for a in args[4:8])  # is_causal sits among dropout/flags
    return attention_cost(q[0] * q[2], q[1], k[1], q[3], v[3], bias is not None, causal)


@register("_scaled_dot_product_flash_attention_for_cpu_backward",
          "_scaled_dot_product_flash_attention_backward",
          "_scaled_dot_product_efficient_attention_backward",
          "_scaled_dot_product_cudnn_attention_backward")
def fused_attention_backward_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """The fused kernels' backward (grad_out, query, key, value, ...), counted as the math
    path's backward, as their forward is: the same count on every device.

    Per batch x head: dV = P^T dO (L*S*Ev), dP = dO V^T (L*S*Ev), dQ = dS K (L*S*E),
    dK = dS^T Q (L*S*E) MACs; FLOPs = 2 x MACs + 4 per score for the softmax backward +
    the scaling of dQ and dK (L*E + S*E). A mask or causal flag adds nothing: no gradient
    flows into it. (Flash kernels recompute the scores instead of storing them; that
    recomputation is not counted, as the math path does not run it.)
    """
    q, k, v = args[1], args[2], args[3]
    bh, l, e = _bhle(q)
    s, ev = k[-2], v[-1]
    macs = 2 * bh * l * s * (e + ev)
    return Cost(macs, 2 * macs + 4 * bh * l * s + bh * (l * e + s * e))


@register("_native_multi_head_attention")
def native_mha_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """nn.MultiheadAttention's fused inference path, counted as its unfused ops.

    _native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight,
    qkv_bias, proj_weight, proj_bias, mask, ...), batch first (B, L, E):
    input projections B*L*E*E + 2*B*S*E*E MACs (plus a bias add per output), attention
    over num_head heads of E/num_head, output projection B*L*E*E MACs plus its bias.
    """
    q, k = args[0], args[1]
    e, heads = int(args[3]), int(args[4])
    b, l, s = (q[0] if len(q) == 3 else 1), q[-2], k[-2]
    qkv_bias = len(args) > 6 and _is_tensor(args[6])
    proj_bias = len(args) > 8 and _is_tensor(args[8])
    masked = len(args) > 9 and _is_tensor(args[9])
    proj_macs = b * l * e * e + 2 * b * s * e * e + b * l * e * e
    proj_flops = 2 * proj_macs + (b * (l + 2 * s) * e if qkv_bias else 0) \
        + (b * l * e if proj_bias else 0)
    attn = attention_cost(b * heads, l, s, e // heads, e // heads, masked)
    return Cost(proj_macs + attn.macs, proj_flops + attn.flops)


def op_cost(name: str, args: Sequence[Any], outs: Sequence[Shape],
            kwargs: dict | None = None) -> Cost | None:
    """Cost of op ``name``; ``None`` when no formula exists (an unsupported op).

    ``kwargs`` (tensors as ``TensorShape``) reach only formulas marked ``wants_kwargs``
    (the attention ops, whose mask may be keyword-only).
    """
    if name in SHAPE_OPS or name in FREE_OPS:
        return Cost(0, 0)
    formula = FORMULAS.get(name)
    if formula is None:
        return None
    if getattr(formula, "wants_kwargs", False):
        return formula(args, outs, kwargs)
    return formula(args, outs)


# ---------------------------------------------------------------- user formulas

#: Cost formulas for whole modules, by class: ``fn(module, input_shapes, output_shapes)``.
#: An instance of such a class is one layer (its inner ops are not counted separately).
MODULE_FORMULAS: dict[type, Callable[..., Any]] = {}
_USER_OPS: set[str] = set()  # op names registered by register_formula (replaceable)
_revision = [0]  # bumped on every registration: the tracer's layer memo starts afresh


def formulas_revision() -> int:
    """A number that changes whenever a formula is registered or replaced."""
    return _revision[0]


def register_formula(target: Any, formula: Callable[..., Any] | None = None, *,
                     replace: bool = False) -> Any:
    """Register the cost of your own op or module; usable as a decorator.

    ``target`` is one of:

    - an op: its name (``"my_scan"``, ``"mylib::my_scan"``) or the op object
      (``torch.ops.mylib.my_scan``). ``formula(args, out_shapes)`` gets the op's
      positional arguments with every tensor replaced by its shape (a tuple) and the
      shapes of its tensor outputs;
    - an ``nn.Module`` subclass. ``formula(module, input_shapes, output_shapes)`` gets
      the module; each instance becomes one layer whose cost is the formula's, whatever
      ops its forward runs (its parameters, submodules' included, are its own).

    The formula returns ``(macs, flops)`` (or a ``Cost``). A built-in formula is replaced
    only with ``replace=True``; one you registered before is replaced silently (a script
    run twice). Returns the formula.
    """
    if formula is None:
        return lambda fn: register_formula(target, fn, replace=replace)
    if not callable(formula):
        raise TypeError("register_formula needs a callable formula")
    if isinstance(target, type):
        MODULE_FORMULAS[target] = formula
        _revision[0] += 1
        return formula
    name = _op_name_of(target)
    built_in = name in SHAPE_OPS or name in FREE_OPS or (name in FORMULAS and name not in _USER_OPS)
    if built_in and not replace:
        raise ValueError(f"{name!r} already has a built-in cost formula; pass replace=True "
                         "to use yours instead")

    def user_formula(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
        return as_cost(formula(args, outs), name, formula)

    user_formula.__doc__ = formula.__doc__
    FORMULAS[name] = user_formula
    _USER_OPS.add(name)
    _revision[0] += 1
    return formula


def _op_name_of(target: Any) -> str:
    """The name the tracer knows an op by: ``aten.relu_.default`` -> ``relu``."""
    packet = getattr(target, "overloadpacket", target)
    name = getattr(packet, "__name__", None) if not isinstance(target, str) else target
    if not isinstance(name, str) or not name:
        raise TypeError(f"cannot register a formula for {target!r}: give an op name, an op "
                        "(torch.ops.NS.NAME) or an nn.Module subclass")
    name = name.split("::")[-1].split(".")[0]
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return name


def module_cost(module: Any, input_shapes: Sequence[Shape], output_shapes: Sequence[Shape]) -> Cost | None:
    """The registered formula's cost for ``module``, or None when its class has none."""
    for cls in type(module).__mro__:
        formula = MODULE_FORMULAS.get(cls)
        if formula is not None:
            return as_cost(formula(module, list(input_shapes), list(output_shapes)),
                            type(module).__name__, formula)
    return None


def has_module_formula(module: Any) -> bool:
    return bool(MODULE_FORMULAS) and any(c in MODULE_FORMULAS for c in type(module).__mro__)
