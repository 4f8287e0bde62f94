"""A device name checked once: ``resolve_device("cuda:1")`` or a one-line error.

Its own module so that timing (``cnnscope.benchmark``) checks ``--device`` without importing
the tracer, which only ``cnnscope.api`` may drive.
"""

from __future__ import annotations

import torch

from cnnscope.errors import DeviceUnavailableError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/"meta" -> meta; "cpu"; "cuda"/"cuda:N" when present. Anything else
    (mps, xla, a typo, cuda without CUDA) is a one-line error before anything runs."""
    if device is None:
        return torch.device("meta")
    try:
        dev = torch.device(device.strip() if isinstance(device, str) else device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceUnavailableError(
            f"unknown device {device!r}", "use meta, cpu or cuda (cuda:N for a given GPU)"
        ) from None
    if dev.type not in ("meta", "cpu", "cuda"):
        raise DeviceUnavailableError(f"device {str(device)!r} is not supported",
                                     "cnnscope runs on meta (counting), cpu or cuda")
    if dev.type in ("meta", "cpu") and dev.index not in (None, 0):
        raise DeviceUnavailableError(f"no device {str(device)!r}", f"use --device {dev.type}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "CUDA is not available on this machine",
            "use --device cpu (or meta, the default, for counting)",
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"no CUDA device {dev.index} (this machine has {torch.cuda.device_count()})",
            "pick an existing cuda:N",
        )
    return dev
