"""The four number formats a benchmark runs in, and the torch settings each one means.

- ``fp32``: float32 weights and activations, IEEE float32 math. TF32 is switched OFF for
  matmuls *and* cuDNN convolutions. (PyTorch's own default leaves TF32 on for cuDNN
  convolutions, so a "float32" figure from another tool that keeps the defaults is
  partly TF32.)
- ``tf32``: float32 tensors, TF32 tensor-core math for matmuls and convolutions (CUDA,
  Ampere and later; a CUDA-only mode).
- ``bf16`` / ``fp16``: float32 weights, ``torch.autocast`` to the half type (mixed
  precision, as used for training): convolutions and matmuls run in the half type,
  reductions and the loss in float32.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator

import torch

from cnnscope.errors import InvalidOptionError

DTYPES = ("fp32", "tf32", "bf16", "fp16")
HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_dtype(dtype: str, device: torch.device) -> str:
    """``dtype`` if it can run on ``device``; a one-line error otherwise."""
    if dtype not in DTYPES:
        raise InvalidOptionError(f"unknown dtype {dtype!r}", "use fp32, tf32, bf16 or fp16")
    if dtype == "tf32" and device.type != "cuda":
        raise InvalidOptionError("tf32 is a CUDA math mode", "use fp32 (or bf16/fp16) on the CPU")
    return dtype


def tensor_dtype(dtype: str) -> torch.dtype:
    """The dtype of the tensors a dense matmul in ``dtype`` multiplies."""
    return HALF.get(dtype, torch.float32)


def autocast(device: torch.device, dtype: str, *, cache_enabled: bool = True) -> ContextManager:
    """``torch.autocast`` to the half type for bf16/fp16; a no-op for fp32/tf32.

    ``cache_enabled=False`` is required while capturing a CUDA graph (docs: CUDA Graphs,
    "Usage with torch.cuda.amp").
    """
    if dtype in HALF:
        return torch.autocast(device_type=device.type, dtype=HALF[dtype], cache_enabled=cache_enabled)
    return nullcontext()


@contextmanager
def fp32_math(device: torch.device, dtype: str) -> Iterator[None]:
    """Set TF32 on (``tf32``) or off (every other dtype) for CUDA matmuls and convolutions,
    and restore the previous settings afterwards. No-op off CUDA.

    Uses the ``fp32_precision`` API where torch has it (2.9+; mixing it with the older
    ``allow_tf32`` flags is an error there), ``allow_tf32`` otherwise.
    """
    if device.type != "cuda":
        yield
        return
    tf32 = dtype == "tf32"
    matmul = torch.backends.cuda.matmul
    conv = getattr(torch.backends.cudnn, "conv", None)
    if hasattr(matmul, "fp32_precision") and conv is not None and hasattr(conv, "fp32_precision"):
        saved = (matmul.fp32_precision, conv.fp32_precision)
        value = "tf32" if tf32 else "ieee"
        matmul.fp32_precision = value
        conv.fp32_precision = value
        try:
            yield
        finally:
            matmul.fp32_precision, conv.fp32_precision = saved
    else:
        saved = (matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        try:
            yield
        finally:
            matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
