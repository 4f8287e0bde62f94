"""Views, reshapes and data movement: cat, slice, pad, copies, creation ops. No arithmetic.

Views (``shape_only``) only re-index memory and keep the data's identity: their records
are of kind "shape". Data movement (a concatenation, a crop, a pad) costs nothing either,
but each is a layer of the dataflow and keeps its own record.
"""

from __future__ import annotations

from typing import Any

import torch

from cnnscope.ops.cost import free
from cnnscope.ops.entry import RfRule, entry
from cnnscope.ops.meta_tensors import empty, empty_following

# The gradient of data movement is data movement (a zero-filled copy, a slice): free.
BACKWARD_FREE = "its gradient is data movement again, which costs nothing"


def read_cat(name: str, args: tuple, out_shapes: list) -> dict[str, Any]:
    """cat/stack(tensors, dim)."""
    dim = args[1] if len(args) > 1 else 0
    return {"extra": {"dim": int(dim)}}


def read_slice(name: str, args: tuple, out_shapes: list) -> dict[str, Any]:
    """slice(x, dim, start, end, step)."""
    dim = args[1] if len(args) > 1 else 0
    start = args[2] if len(args) > 2 else None
    end = args[3] if len(args) > 3 else None
    step = args[4] if len(args) > 4 else 1
    return {"extra": {"dim": int(dim), "start": start, "end": end, "step": int(step)}}


def read_pad(name: str, args: tuple, out_shapes: list) -> dict[str, Any]:
    """constant_pad_nd / reflection_pad*d / replication_pad*d(x, pad): the pad widths."""
    if len(args) > 1:
        return {"extra": {"pad": tuple(int(p) for p in args[1])}}
    return {}


def read_permute(name: str, args: tuple, out_shapes: list) -> dict[str, Any]:
    """permute(x, dims): where each dim goes (receptive fields follow them)."""
    if len(args) > 1:
        return {"extra": {"dims": tuple(int(d) for d in args[1])}}
    return {}


def read_transpose(name: str, args: tuple, out_shapes: list) -> dict[str, Any]:
    """transpose(x, dim0, dim1)."""
    if len(args) > 2:
        return {"extra": {"dims": (int(args[1]), int(args[2]))}}
    return {}


def cat_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """cat(tensors, dim)."""
    tensors = args[0]
    if not isinstance(tensors, (list, tuple)) or kwargs:
        return NotImplemented
    dim = args[1] if len(args) > 1 else 0
    if not tensors or not all(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in tensors):
        return NotImplemented
    first = tensors[0]
    if any(t.dim() != first.dim() or t.dtype != first.dtype for t in tensors):
        return NotImplemented  # legacy empty-tensor and promotion rules: let PyTorch decide
    dim = dim % first.dim()
    for t in tensors[1:]:
        if any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != dim):
            return NotImplemented  # PyTorch raises the proper error
    shape = list(first.shape)
    shape[dim] = sum(t.shape[dim] for t in tensors)
    return empty(first, shape)


cat_kernel.takes_tensor_list = True  # type: ignore[attr-defined]


def pad_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """constant_pad_nd(x, pad, value): pad pairs run from the last dimension backwards."""
    if len(args) < 2:
        return NotImplemented
    x, pad = args[0], args[1]
    if not isinstance(pad, (list, tuple)) or len(pad) % 2 or len(pad) // 2 > x.dim():
        return NotImplemented
    shape = list(x.shape)
    for i in range(len(pad) // 2):
        dim = x.dim() - 1 - i
        shape[dim] += pad[2 * i] + pad[2 * i + 1]
    if any(n < 1 for n in shape):
        return NotImplemented  # PyTorch decides what an emptied or negative size means
    return empty(x, shape)


def roll_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """roll: a permutation of the elements, same layout."""
    x = args[0]
    if x.is_contiguous() and not kwargs:
        return empty(x, x.shape)
    return NotImplemented


def index_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """index(x, [idx]): a gather along dim 0 by an integer index tensor."""
    x = args[0]
    if not (len(args) == 2 and isinstance(args[1], (list, tuple)) and len(args[1]) == 1
            and x.dim() >= 1 and x.is_contiguous()):
        return NotImplemented
    idx = args[1][0]
    if isinstance(idx, torch.Tensor) and idx.device.type == "meta" \
            and idx.dtype in (torch.int64, torch.int32):
        return empty(x, (*idx.shape, *x.shape[1:]))  # gather along dim 0
    return NotImplemented  # a boolean mask is data-dependent: PyTorch decides


def like_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """zeros_like/ones_like/empty_like(x) with nothing that changes dtype or device."""
    x = args[0]
    if len(args) != 1:
        return NotImplemented
    if any(v is not None and k not in ("memory_format", "pin_memory") for k, v in kwargs.items()
           if not (k == "dtype" and v == x.dtype) and not (k == "device" and v == x.device)):
        return NotImplemented
    return empty_following(x.shape, x)  # preserve_format, the default


def _view(names: Any, **fields: Any):
    return entry(names, cost=free, shape_only=True, rf=RfRule.RESHAPE, backward=BACKWARD_FREE,
                 **fields)


def _moves(names: Any, **fields: Any):
    return entry(names, cost=free, backward=BACKWARD_FREE, **fields)


ENTRIES = (
    _view(("view", "_unsafe_view", "reshape", "flatten", "unflatten", "unsqueeze", "squeeze",
           "t", "expand", "expand_as", "as_strided", "alias", "detach", "contiguous", "movedim",
           "view_as", "_reshape_alias", "lift_fresh", "numpy_T")),
    _view("permute", geometry=read_permute),
    _view("transpose", geometry=read_transpose),
    _moves("cat", geometry=read_cat, rf=RfRule.CAT, meta=cat_kernel),
    _moves("stack", geometry=read_cat, rf=RfRule.CAT),
    _moves("slice", geometry=read_slice, rf=RfRule.SLICE),
    _moves("constant_pad_nd", geometry=read_pad, rf=RfRule.PAD, meta=pad_kernel),
    _moves(("reflection_pad2d", "replication_pad2d"), geometry=read_pad, rf=RfRule.PAD),
    _moves("pad", rf=RfRule.PAD),
    # Counted by no formula yet (unsupported), though their geometry is known.
    entry(("reflection_pad1d", "reflection_pad3d", "replication_pad1d", "replication_pad3d"),
          geometry=read_pad, rf=RfRule.PAD),
    _moves(("select", "index_select", "narrow", "gather", "repeat", "flip", "unfold", "im2col"),
           rf=RfRule.OPAQUE_IF_SPATIAL),
    _moves("index", rf=RfRule.OPAQUE_IF_SPATIAL, meta=index_kernel),
    _moves("roll", rf=RfRule.OPAQUE_IF_SPATIAL, meta=roll_kernel),
    _moves(("clone", "copy", "_to_copy", "to", "dropout", "feature_dropout", "alpha_dropout",
            "masked_fill", "fill", "full_like", "lift_fresh_copy", "channel_shuffle", "split",
            "split_with_sizes", "chunk", "unbind"), rf=RfRule.POINTWISE),
    _moves(("zeros_like", "ones_like", "empty_like"), rf=RfRule.POINTWISE, meta=like_kernel),
    _moves(("pixel_shuffle", "pixel_unshuffle"), rf=RfRule.PIXEL_SHUFFLE),
    _moves(("zeros", "ones", "empty", "full", "new_zeros", "new_ones", "new_empty", "new_full",
            "arange", "scalar_tensor", "scatter", "one_hot", "index_put", "_index_put_impl",
            "native_dropout_backward", "empty_strided", "resize", "set", "sym_size",
            "sym_stride", "sym_numel", "embedding", "native_channel_shuffle", "unsafe_split",
            "unsafe_split_with_sizes", "unsafe_chunk", "zero", "tril", "triu", "linspace",
            "logspace")),
    _moves("_local_scalar_dense", data_dependent=True),
    # The gradients of a crop or of one element of a stack: zero-filled copies.
    _moves(("slice_backward", "select_backward", "index_select_backward", "unfold_backward",
            "as_strided_scatter", "slice_scatter", "select_scatter")),
    # Output shapes that depend on the input's values, counted by no formula.
    entry(("item", "repeat_interleave", "masked_scatter"), data_dependent=True),
    entry(("Flatten", "Unflatten"), rf=RfRule.RESHAPE),
    entry(("PixelShuffle", "PixelUnshuffle"), rf=RfRule.PIXEL_SHUFFLE),
    entry(("ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d",
           "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
           "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d",
           "CircularPad2d", "CircularPad3d"), rf=RfRule.PAD),
    entry("ChannelShuffle", rf=RfRule.POINTWISE),
)
