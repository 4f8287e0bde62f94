"""Which fused attention kernel PyTorch would run, and that kernel on meta tensors.

``F.scaled_dot_product_attention`` is one function in front of four kernels, and what a
training step keeps for backward depends on which one runs: the math path saves the
B x H x Nq x Nk attention probabilities, the fused kernels (flash, memory-efficient,
cuDNN) only their output and a B x H x Nq log-sum-exp. On meta tensors PyTorch always
runs the math path, so a plan made there would count probabilities a real CPU or GPU
step never holds (+15 % on ViT-Tiny at batch 8). ``choose`` applies the dispatcher's own
rules for the target device to the shapes, dtypes and flags of one call;
``PlannedAttention`` then runs that kernel's aten op on the meta tensors, so autograd
saves what the real kernel saves.

The rules follow ``aten/src/ATen/native/transformers/sdp_utils_cpp.cpp`` (CPU) and
``cuda/sdp_utils.cpp`` (CUDA) of torch 2.13. The CPU rules are checked against
``torch._fused_sdp_choice`` on real CPU tensors in the tests. The CUDA rules cannot be
checked without a GPU; they leave out what depends on the installed libraries (cuDNN's
version and layout checks, a build without flash attention) and the user's
``torch.backends.cuda.enable_*_sdp`` switches. Flash and cuDNN keep the same tensors for
backward (output and a float32 log-sum-exp of B x H x Nq), so mistaking one for the
other moves the plan by nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

# The kernels, as cnnscope.analysis.memory.ATTENTION names them (less "auto").
KERNELS = ("math", "flash", "efficient", "cudnn")


@dataclass(frozen=True)
class Target:
    """The device the plan is for: ``cpu``, or ``cuda`` with its compute capability."""

    device: str = "cpu"
    arch: tuple[int, int] = (9, 0)  # CUDA only: sm_90 (H100) unless told otherwise

    def label(self) -> str:
        return "cpu" if self.device == "cpu" else f"cuda sm_{self.arch[0]}{self.arch[1]}"


@dataclass(frozen=True)
class Call:
    """The arguments of one ``scaled_dot_product_attention`` call that the rules read."""

    query: Any
    key: Any
    value: Any
    attn_mask: Any = None
    dropout_p: float = 0.0
    is_causal: bool = False
    enable_gqa: bool = False


# ---------------------------------------------------------------------- the rules


def _common(c: Call, gqa: bool, gpu: bool) -> str | None:
    """The checks every fused kernel shares; a reason when one fails."""
    q, k, v = c.query, c.key, c.value
    if not (q.dim() == k.dim() == v.dim() == 4):
        return "query, key and value are not all 4-D"
    if not (q.shape[0] == k.shape[0] == v.shape[0]):
        return "batch sizes differ"
    if c.enable_gqa and gqa:
        if k.shape[1] != v.shape[1] or q.shape[1] % k.shape[1]:
            return "key/value heads do not divide query heads"
    elif not (q.shape[1] == k.shape[1] == v.shape[1]):
        return "head counts differ"
    if q.shape[2] == 0 or k.shape[2] == 0:
        return "a sequence length is 0"
    if not (q.stride(-1) == k.stride(-1) == v.stride(-1) == 1):
        return "the last dimension is not contiguous"
    m = c.attn_mask
    if gpu and m is not None and m.stride(-1) != 1:
        return "the mask's last dimension is not contiguous"
    return None


def _cpu_flash(c: Call) -> str | None:
    if c.dropout_p > 0:
        return "dropout"
    reason = _common(c, gqa=True, gpu=False)
    if reason:
        return reason
    q, k = c.query, c.key
    m = c.attn_mask
    if m is not None:
        if m.requires_grad:
            return "the mask requires grad"
        if m.shape[-2] not in (q.shape[2], 1) or m.shape[-1] not in (k.shape[2], 1):
            return "mask shape"
        if not (m.dim() == 2 or (m.dim() == 4 and m.shape[0] in (1, q.shape[0])
                                 and m.shape[1] in (1, q.shape[1]))):
            return "mask shape"
    if not (q.shape[-1] == k.shape[-1] == c.value.shape[-1]):
        return "head dims differ"
    if not (q.dtype == k.dtype == c.value.dtype) or q.dtype not in (
            torch.float32, torch.float64, torch.bfloat16, torch.float16):
        return "dtype"
    return None


def _cuda_flash(c: Call, arch: tuple[int, int]) -> str | None:
    q, k, v = c.query, c.key, c.value
    if not (8, 0) <= arch <= (12, 1):
        return "flash attention needs sm_80 to sm_121"
    if c.attn_mask is not None:
        return "flash attention takes no mask"
    reason = _common(c, gqa=True, gpu=True)
    if reason:
        return reason
    if not (q.shape[-1] == k.shape[-1] == v.shape[-1]) or q.shape[-1] > 256:
        return "head dim over 256 or not the same in q, k, v"
    if c.is_causal and q.shape[2] != k.shape[2]:
        return "causal with different sequence lengths"
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in (torch.float16, torch.bfloat16):
        return "flash attention needs fp16 or bf16"
    if (q.requires_grad or k.requires_grad or v.requires_grad) and q.shape[-1] > 192 \
            and arch in ((8, 6), (8, 9)):
        return "training with head dim over 192 on sm_86/sm_89"
    return None


def _cuda_efficient(c: Call, arch: tuple[int, int]) -> str | None:
    q, k, v = c.query, c.key, c.value
    if not (5, 0) <= arch <= (12, 1):
        return "memory-efficient attention needs sm_50 to sm_121"
    half = q.dtype in (torch.float16, torch.bfloat16)
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in (
            torch.float32, torch.float16) + ((torch.bfloat16,) if arch >= (8, 0) else ()):
        return "dtype"
    reason = _common(c, gqa=False, gpu=True)
    if reason:
        return reason
    # minimum_gemm_alignment: tensor cores (sm_80+, or sm_7x in half) need 128-bit rows
    tensor_cores = arch >= (8, 0) or (arch >= (7, 0) and half)
    align = max(4 if arch >= (8, 0) else 1, (8 if half else 4) if tensor_cores else 1)
    if q.shape[-1] != k.shape[-1] or q.shape[-1] % align or v.shape[-1] % align:
        return f"head dims not a multiple of {align}"
    return None


def _cuda_cudnn(c: Call, arch: tuple[int, int]) -> str | None:
    # Preferred over flash only on sm_90, sm_100 and sm_103 (with cuDNN > 9.15).
    q, k, v = c.query, c.key, c.value
    if arch not in ((9, 0), (10, 0), (10, 3)):
        return "cuDNN attention comes first only on sm_90, sm_100, sm_103"
    reason = _common(c, gqa=False, gpu=True)
    if reason:
        return reason
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in (torch.float16, torch.bfloat16):
        return "cuDNN attention needs fp16 or bf16"
    if not (q.shape[-1] == k.shape[-1] == v.shape[-1]) or q.shape[-1] > 128 or q.shape[-1] % 8:
        return "head dim over 128 or not a multiple of 8"
    if c.is_causal and q.shape[2] != k.shape[2]:
        return "causal with different sequence lengths"
    return None


def why_not(kernel: str, c: Call, target: Target) -> str | None:
    """Why ``kernel`` cannot run this call on ``target`` (None: it can)."""
    if kernel == "math":
        return None
    if target.device == "cpu":
        if kernel != "flash":
            return f"{kernel} attention runs only on CUDA"
        return _cpu_flash(c)
    rule = {"flash": _cuda_flash, "efficient": _cuda_efficient, "cudnn": _cuda_cudnn}[kernel]
    return rule(c, target.arch)


def choose(c: Call, target: Target) -> str:
    """The kernel PyTorch's dispatcher picks: the first in its priority order whose
    checks pass (CPU: flash, math; CUDA: cuDNN, flash, memory-efficient, math)."""
    order = ("flash",) if target.device == "cpu" else ("cudnn", "flash", "efficient")
    for kernel in order:
        if why_not(kernel, c, target) is None:
            return kernel
    return "math"


# ---------------------------------------------------------------------- on meta


def _run(kernel: str, target: Target, c: Call, scale: float | None, original) -> torch.Tensor:
    """The chosen kernel's aten op on meta tensors, with the inputs it would be given."""
    q, k, v, mask = c.query, c.key, c.value, c.attn_mask
    if kernel == "math":
        return original(q, k, v, attn_mask=mask, dropout_p=c.dropout_p, is_causal=c.is_causal,
                        scale=scale, enable_gqa=c.enable_gqa)
    if mask is not None and mask.dtype == torch.bool:  # convert_boolean_attn_mask
        mask = torch.zeros_like(mask, dtype=q.dtype)
    aten = torch.ops.aten
    if target.device == "cpu":
        return aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, c.dropout_p, c.is_causal, attn_mask=mask, scale=scale)[0]
    if kernel == "flash":
        e = q.shape[-1]
        if e % 8:  # the CUDA flash kernel pads the head dim to a multiple of 8
            pad = 8 - e % 8
            q, k, v = (F.pad(t, (0, pad)) for t in (q, k, v))
        out = aten._scaled_dot_product_flash_attention(
            q, k, v, c.dropout_p, c.is_causal, False,
            scale=scale if scale is not None else e ** -0.5)[0]
        return out[..., :e] if e % 8 else out
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    if kernel == "efficient":
        if mask is not None:  # preprocess_mask: padded to 16 columns, expanded to 4-D
            n = mask.shape[-1]
            if n % 16:
                mask = F.pad(mask, (0, 16 - n % 16))[..., :n]
            mask = mask.expand(q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        return aten._scaled_dot_product_efficient_attention(
            q, k, v, mask, grad, c.dropout_p, c.is_causal, scale=scale)[0]
    return aten._scaled_dot_product_cudnn_attention(
        q, k, v, mask, grad, c.dropout_p, c.is_causal, False, scale=scale)[0]


class PlannedAttention(TorchFunctionMode):
    """Runs each ``F.scaled_dot_product_attention`` on meta as the kernel ``choose``
    picks for ``target`` (or ``force``, which must be able to run the call), and counts
    the calls by kernel in ``used``."""

    def __init__(self, target: Target, force: str = "auto") -> None:
        super().__init__()
        self.target, self.force = target, force
        self.used: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not torch._C._nn.scaled_dot_product_attention:
            return func(*args, **kwargs)
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale",
                 "enable_gqa")
        given = dict(zip(names, args), **kwargs)
        c = Call(given["query"], given["key"], given["value"], given.get("attn_mask"),
                 float(given.get("dropout_p", 0.0)), bool(given.get("is_causal", False)),
                 bool(given.get("enable_gqa", False)))
        if self.force == "auto":
            kernel = choose(c, self.target)
        else:
            kernel = self.force
            reason = why_not(kernel, c, self.target)
            if reason is not None:
                from cnnscope.errors import InvalidOptionError

                raise InvalidOptionError(
                    f"--attention {kernel} cannot run this model's attention on "
                    f"{self.target.label()}: {reason}",
                    "leave --attention out to plan the kernel PyTorch picks")
        self.used[kernel] += 1
        return _run(kernel, self.target, c, given.get("scale"), func)


# ---------------------------------------------------------------------- CPU scratch


def _cpu_splits(q_len: int) -> tuple[int, int]:
    # flash_attention_kernel_impl: the query/key block sizes by query length
    if q_len >= 768:
        return 256, 512
    if q_len >= 192:
        return 64, 512
    return 32, 512


def cpu_flash_workspace(func, args: tuple, kwargs: dict, threads: int) -> int:
    """Bytes the CPU flash attention kernels allocate per call besides their outputs
    (``FlashAttentionKernel.cpp``): per thread, a block of scores, its max and sum and
    an output block (forward), or a block of scores and their gradient (backward), in
    float32, plus copies of the score blocks in the input dtype for bf16/fp16.
    Left out: the packed copies of key and value that AMX bf16/fp16 kernels may make."""
    name = func.overloadpacket.__name__
    if name == "_scaled_dot_product_flash_attention_for_cpu":
        q, k, v = args[:3]
        backward = False
    elif name == "_scaled_dot_product_flash_attention_for_cpu_backward":
        q, k, v = args[1:4]
        backward = True
    else:
        return 0
    q_split, kv_split = _cpu_splits(q.shape[2])
    qs, kvs = min(q_split, q.shape[2]), min(kv_split, k.shape[2])
    acc = 8 if q.dtype == torch.float64 else 4
    reduced = q.element_size() if q.dtype in (torch.bfloat16, torch.float16) else 0
    if backward:
        per_thread = 2 * qs * kvs * acc + 2 * qs * kvs * reduced
    else:
        per_thread = (qs * kvs + 2 * qs + qs * v.shape[-1]) * acc + qs * kvs * reduced
    return threads * per_thread
