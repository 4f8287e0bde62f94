"""Matrix products: mm, addmm, bmm, baddbmm, matmul, linear, einsum.

MACs = M*K*N per (batched) product; FLOPs = 2 x MACs + one add per output element for
a bias or an added matrix.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from cnnscope.ops.cost import Cost, Shape, out_numel, tensor_args
from cnnscope.ops.entry import RfRule, entry
from cnnscope.ops.meta_tensors import empty, inplace


def addmm_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """bias + (M x K) @ (K x N): M*K*N MACs, plus M*N bias adds."""
    _, a, b = args[0], args[1], args[2]
    macs = a[0] * a[1] * b[1]
    return Cost(macs, 2 * macs + a[0] * b[1])


def mm_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """(M x K) @ (K x N): M*K*N MACs."""
    a, b = args[0], args[1]
    macs = a[0] * a[1] * b[1]
    return Cost(macs, 2 * macs)


def bmm_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Batched (B x M x K) @ (B x K x N): B*M*K*N MACs."""
    a, b = args[0], args[1]
    macs = a[0] * a[1] * a[2] * b[2]
    return Cost(macs, 2 * macs)


def baddbmm_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """bias + batched product: B*M*K*N MACs plus one add per output element."""
    a, b = args[1], args[2]
    macs = a[0] * a[1] * a[2] * b[2]
    return Cost(macs, 2 * macs + out_numel(outs))


def matmul_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Generic matmul/linear (seen only if not decomposed): output elements x inner size."""
    tensors = tensor_args(args)
    a = tensors[0]
    macs = out_numel(outs) * a[-1]
    bias = tensors[2] if len(tensors) > 2 else None
    return Cost(macs, 2 * macs + (out_numel(outs) if bias is not None else 0))


def addmm_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """addmm(bias, a, b) = bias + a @ b."""
    x = args[0]
    if len(args) < 3 or inplace(func):
        return NotImplemented
    a, b = args[1], args[2]
    if a.dim() == 2 and b.dim() == 2 and a.shape[1] == b.shape[0] and a.dtype == b.dtype == x.dtype:
        return empty(a, (a.shape[0], b.shape[1]))
    return NotImplemented


def matmul_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """mm(a, b) / bmm(a, b)."""
    if len(args) != 2 or not isinstance(args[1], torch.Tensor):
        return NotImplemented
    a, b = args[0], args[1]
    nd = 2 if name == "mm" else 3
    if (a.dim() == b.dim() == nd and a.shape[-1] == b.shape[-2] and a.dtype == b.dtype
            and b.device.type == "meta" and (nd == 2 or a.shape[0] == b.shape[0])):
        return empty(a, (*a.shape[:-1], b.shape[-1]))
    return NotImplemented


_LOW = dict(weighted=True, autocast="low")

ENTRIES = (
    entry("mm", cost=mm_cost, backward=("mm",), rf=RfRule.LINEAR, meta=matmul_kernel,
          fvcore="mm", torch_functions=(torch.mm, torch.Tensor.mm), **_LOW),
    entry("addmm", cost=addmm_cost, backward=("mm", "sum"), rf=RfRule.LINEAR,
          meta=addmm_kernel, fvcore="addmm", torch_functions=(torch.addmm,), **_LOW),
    entry("bmm", cost=bmm_cost, backward=("bmm",), rf=RfRule.MIX_ALL, meta=matmul_kernel,
          fvcore="bmm", torch_functions=(torch.bmm, torch.Tensor.bmm), **_LOW),
    entry(("baddbmm", "addbmm"), cost=baddbmm_cost, backward=("bmm", "sum"), rf=RfRule.MIX_ALL,
          fvcore="baddbmm", torch_functions=(torch.baddbmm, torch.addbmm), **_LOW),
    entry("linear", cost=matmul_cost, backward=("mm", "sum"), rf=RfRule.LINEAR,
          fvcore="linear", torch_functions=(F.linear,), **_LOW),
    entry(("matmul", "einsum_bmm"), cost=matmul_cost, backward=("mm", "bmm"),
          rf=RfRule.MIX_ALL, fvcore="matmul",
          torch_functions=(torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__), **_LOW),
    # einsum runs as the bmm/mm it decomposes into; the entry holds its flags.
    entry("einsum", rf=RfRule.MIX_ALL, fvcore="einsum", torch_functions=(torch.einsum,),
          **_LOW),
    entry(("Linear", "Bilinear", "LazyLinear"), rf=RfRule.LINEAR, weighted=True),
)
