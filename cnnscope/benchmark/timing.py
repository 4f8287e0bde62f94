"""Timers: CUDA events on a GPU, the monotonic clock on a CPU.

Both share one small interface: ``mark()`` returns a timestamp token, ``sync()`` waits
until every token taken so far is resolved, and ``elapsed_ms(a, b)`` (valid only after
``sync()``) is the time between two tokens.

Why events on CUDA: kernels run asynchronously, so a host clock read after a launch
measures the launch, not the work. ``torch.cuda.Event(enable_timing=True).record()``
puts a timestamp into the stream itself; the GPU writes it when the work before it has
finished, and ``Event.elapsed_time`` is the GPU time between two such stamps (docs:
torch.cuda.Event). Marks cost no synchronisation, so a timed loop can queue iteration
after iteration and synchronise once at the end; the host never idles the GPU.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import torch


class Timer(Protocol):
    device: torch.device

    def mark(self) -> Any: ...

    def sync(self) -> None: ...

    def elapsed_ms(self, start: Any, end: Any) -> float: ...


class WallTimer:
    """``time.perf_counter_ns``: monotonic, the highest-resolution clock Python has.

    CPU ops run synchronously on the calling thread (intra-op parallelism joins before
    an op returns), so a clock read after an op has seen the op finish.
    """

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)

    def mark(self) -> int:
        return time.perf_counter_ns()

    def sync(self) -> None:
        return None

    def elapsed_ms(self, start: int, end: int) -> float:
        return (end - start) / 1e6


class CudaEventTimer:
    """Timing events recorded into the current stream of ``device``."""

    def __init__(self, device: torch.device | str = "cuda"):
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise ValueError(f"CudaEventTimer needs a CUDA device, got {self.device}")

    def mark(self) -> torch.cuda.Event:
        event = torch.cuda.Event(enable_timing=True)
        # The current stream is where the model's kernels go (and, inside autograd, the
        # stream of the forward op whose backward is running).
        event.record(torch.cuda.current_stream(self.device))
        return event

    def sync(self) -> None:
        torch.cuda.synchronize(self.device)

    def elapsed_ms(self, start: torch.cuda.Event, end: torch.cuda.Event) -> float:
        return float(start.elapsed_time(end))


def timer_for(device: torch.device | str) -> Timer:
    """The right timer for ``device``: events on CUDA, the monotonic clock elsewhere."""
    dev = torch.device(device)
    return CudaEventTimer(dev) if dev.type == "cuda" else WallTimer(dev)


def phase_times(timer: Timer, marks: list[Any], phases: tuple[str, ...]) -> dict[str, float]:
    """Times between consecutive marks, named by ``phases``, plus ``total`` (first to last).

    ``marks`` holds len(phases) + 1 tokens: e.g. start, forward end, backward end, step end
    for phases ("fwd", "bwd", "opt"). Call after ``timer.sync()``.
    """
    if len(marks) != len(phases) + 1:
        raise ValueError(f"{len(marks)} marks for {len(phases)} phases")
    out = {name: timer.elapsed_ms(marks[i], marks[i + 1]) for i, name in enumerate(phases)}
    out["total"] = timer.elapsed_ms(marks[0], marks[-1])
    return out
