"""Scaled dot-product attention in every form PyTorch runs it, and fused multi-head attention.

Every kernel (the math path, CPU and CUDA flash, memory-efficient, cuDNN) is counted as
the math path, so a model costs the same on every device (``attention_cost``).
"""

from __future__ import annotations

from math import prod
from typing import Any, Sequence

import torch

from cnnscope.ops.cost import Cost, Formula, Shape, TensorShape
from cnnscope.ops.entry import BACKWARD_IS_A_BACKWARD, BACKWARD_PASSES_THROUGH, RfRule, entry


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
    """The cost of a fused op whose mask sits at ``mask_at`` (or keyword ``mask_kw``) and
    causal flag at ``causal_at``: one parser per argument layout."""

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


def bshe_attention_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """The kernels under the fused ops take (B, L, H, E) tensors; same count."""
    q, k, v = args[0], args[1], args[2]
    bias = args[3] if len(args) > 3 and _is_tensor(args[3]) else None
    causal = any(a is True for a in args[4:8])  # is_causal sits among dropout/flags
    return attention_cost(q[0] * q[2], q[1], k[1], q[3], v[3], bias is not None, causal)


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


_FUSED_BACKWARD = ("_scaled_dot_product_flash_attention_for_cpu_backward",
                   "_scaled_dot_product_flash_attention_backward",
                   "_scaled_dot_product_efficient_attention_backward",
                   "_scaled_dot_product_cudnn_attention_backward")
_MATH_BACKWARD = ("the math path's gradient is its own ops' (bmm, softmax backward, mul), "
                  "counted by their entries")


def _attention(names: Any, cost: Formula, **fields: Any):
    return entry(names, cost=cost, cost_wants_kwargs=bool(getattr(cost, "wants_kwargs", False)),
                 rf=RfRule.MIX_ALL, **fields)


ENTRIES = (
    # q, k, v, attn_mask, dropout_p, is_causal, ... (the composite; cnnscope's own one op)
    _attention("scaled_dot_product_attention", _sdpa(3, 5, "attn_mask"), backward=_FUSED_BACKWARD,
               autocast="low", torch_functions=(torch._C._nn.scaled_dot_product_attention,)),
    # the math path, same layout
    _attention(("_scaled_dot_product_attention_math",
                "_scaled_dot_product_attention_math_for_mps"), _sdpa(3, 5, "attn_mask"),
               backward=_MATH_BACKWARD),
    # CPU flash: q, k, v, dropout_p, is_causal, *, attn_mask, scale
    _attention("_scaled_dot_product_flash_attention_for_cpu", _sdpa(None, 4, "attn_mask"),
               backward=_FUSED_BACKWARD[:1]),
    # CUDA flash: q, k, v, dropout_p, is_causal, return_debug_mask, *, scale
    _attention("_scaled_dot_product_flash_attention", _sdpa(None, 4),
               backward=_FUSED_BACKWARD[1:2]),
    # memory-efficient and cuDNN: q, k, v, attn_bias, compute_log_sumexp, dropout_p, is_causal
    _attention(("_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention"),
               _sdpa(3, 6), backward=_FUSED_BACKWARD[2:]),
    # XPU/HPU and others: q, k, v, attn_bias, dropout_p, is_causal, ...
    _attention("_scaled_dot_product_fused_attention_overrideable", _sdpa(3, 5),
               backward=BACKWARD_PASSES_THROUGH),
    # the kernels under the fused ops, (B, L, H, E)
    _attention(("_flash_attention_forward", "_efficient_attention_forward"), bshe_attention_cost,
               backward=_FUSED_BACKWARD[1:3]),
    _attention("_native_multi_head_attention", native_mha_cost,
               backward="an inference-only fused path: training runs the unfused ops"),
    entry(_FUSED_BACKWARD, cost=fused_attention_backward_cost, backward=BACKWARD_IS_A_BACKWARD),
    entry("MultiheadAttention", rf=RfRule.MIX_ALL),
)
