"""Parsing input sizes and finding the smallest input a network accepts."""

from __future__ import annotations

import re
from typing import Callable

from cnnscope.errors import InputTooSmallError, InvalidInputSizeError

_SIZE = re.compile(r"^\s*\d+(\s*[xX×,]\s*\d+){0,3}\s*$")

#: What each rank of a per-sample input means (the batch dimension is added in front).
RANK_NAMES = {1: "C", 2: "CxL", 3: "CxHxW", 4: "CxTxHxW"}

# The per-sample input of a model that names none (no registry input_size, no example_inputs).
DEFAULT_INPUT = (3, 224, 224)


def parse_input_size(text: str) -> tuple[int, ...]:
    """``"3x224x224"`` -> ``(3, 224, 224)``: C, CxL, CxHxW or CxTxHxW; else a one-line error."""
    if not _SIZE.match(text or ""):
        raise InvalidInputSizeError(
            f"malformed input size {text!r}",
            "write it as C, CxL, CxHxW or CxTxHxW, e.g. --input 3x224x224")
    size = tuple(int(g) for g in re.split(r"\s*[xX×,]\s*", text.strip()))
    if any(s < 1 for s in size):
        raise InvalidInputSizeError(
            f"input size {text!r} has a zero dimension", "every dimension must be >= 1, e.g. 3x224x224"
        )
    return size


def parse_input_sizes(texts: list[str] | tuple[str, ...] | None) -> tuple[int, ...] | tuple[tuple[int, ...], ...] | None:
    """Repeated ``--input``: one size -> that size; several -> one per forward argument."""
    if not texts:
        return None
    sizes = tuple(parse_input_size(t) for t in texts)
    return sizes[0] if len(sizes) == 1 else sizes


def as_input_sizes(size: object) -> tuple[tuple[int, ...], ...]:
    """One size ``(3, 224, 224)`` or several ``((3, 224, 224), (1, 224, 224))`` -> several."""
    if isinstance(size, str):
        return (parse_input_size(size),)
    items = tuple(size)  # type: ignore[arg-type]
    if items and all(isinstance(s, (tuple, list, str)) for s in items):
        return tuple(parse_input_size(s) if isinstance(s, str) else tuple(int(n) for n in s)
                     for s in items)
    return (tuple(int(n) for n in items),)


def size_text(size: object) -> str:
    """``(3, 224, 224)`` -> ``3x224x224``; several inputs joined with ``+``."""
    return " + ".join("x".join(str(n) for n in s) for s in as_input_sizes(size))


def check_batch(batch: int) -> int:
    """A batch must be a positive integer."""
    if batch < 1:
        raise InvalidInputSizeError(f"batch size {batch} is not positive", "use --batch 1 or more")
    return batch


def smallest_spatial_size(fits: Callable[[int], bool], start: int, limit: int = 4096) -> int | None:
    """Smallest square side ``s`` for which ``fits(s)`` holds, searching up from 1.

    ``fits`` must be monotone (a network that accepts s accepts s+1): true for the
    "feature map shrinks below a window" failure, which is what this is used for.
    Returns None when nothing up to ``limit`` fits.
    """
    hi = max(start, 1)
    while not fits(hi):
        if hi >= limit:
            return None
        hi = min(hi * 2, limit)
    lo = 0  # fits(lo) is False by convention
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi


def too_small_message(err: InputTooSmallError, channels: int, smallest: int | None,
                      fixed_size: tuple[int, ...] | None = None) -> InputTooSmallError:
    """The same error, now naming the smallest input that works.

    ``fixed_size`` is given when the feature maps fit from ``smallest`` up but the
    classifier accepts only the model's default input (no adaptive pooling).
    """
    if smallest is None:
        return err
    if fixed_size is not None:
        size = "x".join(str(s) for s in fixed_size)
        hint = (f"its feature maps fit from {channels}x{smallest}x{smallest} up, but its "
                f"classifier accepts only {size}")
    else:
        hint = f"the smallest input that works is {channels}x{smallest}x{smallest}"
    return InputTooSmallError(err.message, hint, layer=err.layer, min_size=smallest)


# PyTorch sizes a tensor's storage in bytes as an int64: 2^63 / 8 bytes (float64) is the
# most elements an input may have before torch.empty overflows with a bare RuntimeError.
MAX_ELEMENTS = 2**60


def check_elements(size: tuple, batch: int) -> None:
    """A batch of inputs must have fewer elements than a tensor can index (``size``: one
    per-sample shape, or a tuple of them, one per forward argument)."""
    if size and isinstance(size[0], (tuple, list)):
        for one in size:
            check_elements(tuple(one), batch)
        return
    numel = batch
    for s in size:
        numel *= s
    if numel > MAX_ELEMENTS:
        shown = "x".join(str(s) for s in size)
        raise InvalidInputSizeError(
            f"input {shown} at batch {batch} has {numel:.3g} elements, more than a tensor "
            f"can hold (2^60)", "use a smaller --input or --batch")


def available_bytes(device) -> int | None:
    """Free memory on ``device`` (torch.device): MemAvailable for the CPU, the CUDA
    driver's free figure for a GPU; None when it cannot be read."""
    if device.type == "cuda":
        import torch

        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except Exception:  # noqa: BLE001 - an unreadable figure means "do not guess"
            return None
    if device.type == "cpu":
        return cpu_available_bytes()
    return None


def proc_bytes(path: str, key: str) -> int | None:
    """A ``KEY:  N kB`` line of a Linux /proc file (``/proc/meminfo``, ``/proc/self/status``)
    in bytes; None where the file or the line is missing or unreadable."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def cpu_available_bytes() -> int | None:
    """Bytes this machine can allocate without swapping: MemAvailable (Linux), else the
    free physical pages; None when neither can be read."""
    available = proc_bytes("/proc/meminfo", "MemAvailable")
    if available is not None:
        return available
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(need_bytes: int, device, what: str) -> None:
    """Refuse a real-device run whose lower bound on memory exceeds what is free.

    ``need_bytes`` must be a lower bound (the input, the largest layer output and the
    weights), so a refusal is always right; a run that passes may still need more.
    """
    free = available_bytes(device)
    if free is not None and need_bytes > free:
        raise InvalidInputSizeError(
            f"{what} needs at least {_gib(need_bytes)} on {device} (input, largest layer "
            f"output and weights), but {_gib(free)} is free",
            "count on the meta device (the default: nothing is allocated), or use a smaller "
            "--input or --batch")


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"
