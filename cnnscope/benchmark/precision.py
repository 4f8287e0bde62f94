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

import warnings
from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator

import torch

import cnnscope.patches as patches
from cnnscope.errors import InvalidOptionError

BENCH_PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_dtype(dtype: str, device: torch.device) -> str:
    """``dtype`` if it can run on ``device``; a one-line error otherwise."""
    if dtype not in BENCH_PRECISIONS:
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
    and restore the previous settings afterwards. No-op off CUDA (``tf32_flags``)."""
    if device.type != "cuda":
        yield
        return
    with tf32_flags(dtype == "tf32"):
        yield


def tf32_flags(tf32: bool) -> ContextManager[None]:
    """TF32 on or off for matmuls, cuDNN convolutions *and* cuDNN RNNs, restored afterwards.

    Uses the ``fp32_precision`` API where torch has it (2.9+; mixing it with the older
    ``allow_tf32`` flags is an error there), ``allow_tf32`` otherwise. The RNN flag is set
    with the convolution's: torch raises when code reads the legacy
    ``torch.backends.cudnn.allow_tf32`` while conv and rnn disagree, and inductor, the
    profiler, timm or user code may read it inside a row.
    """
    return _TF32(tf32)


def _precision_flags() -> list | None:
    """The objects with an ``fp32_precision`` (matmul, conv, rnn), or None before torch 2.9."""
    matmul = torch.backends.cuda.matmul
    conv = getattr(torch.backends.cudnn, "conv", None)
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if hasattr(matmul, "fp32_precision") and conv is not None and hasattr(conv, "fp32_precision"):
        return [matmul, conv] + ([rnn] if rnn is not None and hasattr(rnn, "fp32_precision") else [])
    return None


def _save_tf32() -> tuple:
    flags = _precision_flags()
    if flags is None:
        return None, (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    return [(f, f.fp32_precision) for f in flags], _read_legacy()


def _set_tf32(tf32: bool) -> None:
    flags = _precision_flags()
    if flags is None:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        return
    # torch keeps the legacy booleans apart and raises on reading them once they
    # disagree with the new flags: set both, legacy first, so that they agree.
    _set_legacy(tf32, tf32)
    for f in flags:
        f.fp32_precision = "tf32" if tf32 else "ieee"


def _restore_tf32(state: tuple) -> None:
    saved, legacy = state
    if saved is None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = legacy
        return
    if legacy is not None:
        _set_legacy(*legacy)
    for f, value in saved:
        f.fp32_precision = value


def _read_legacy() -> tuple[bool, bool] | None:
    """(matmul, cudnn) legacy allow_tf32, or None when torch refuses to read them."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return (bool(torch.backends.cuda.matmul.allow_tf32),
                    bool(torch.backends.cudnn.allow_tf32))
    except RuntimeError:
        return None


def _set_legacy(matmul: bool, cudnn: bool) -> None:
    with warnings.catch_warnings():  # the legacy setters are deprecated, and still read
        warnings.simplefilter("ignore")
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


_TF32 = patches.setting("tf32", _save_tf32, _set_tf32, _restore_tf32)
