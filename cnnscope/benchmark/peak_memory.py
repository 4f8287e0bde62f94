"""Device memory around a benchmark row: its peak, out-of-memory errors, freeing it after."""

from __future__ import annotations

import gc
import sys

import torch

from cnnscope.trace.sizes import proc_bytes


class PeakMemory:
    """Peak memory over a stretch of a run.

    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``: the
    tensors alive at the worst moment (weights, activations, gradients, optimizer state),
    without the caching allocator's reserve or the CUDA context.
    CPU: the process's peak resident set. On Linux the kernel's high-water mark is reset
    first (``/proc/self/clear_refs``), so it covers the timed iterations; elsewhere it is
    ``getrusage`` ru_maxrss, the peak since the process started. Either way it is the
    whole process (Python, torch's libraries), not the model alone.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.kind: str | None = None

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.kind = "cuda max_memory_allocated"
            return
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # "5": reset the peak RSS (Documentation/filesystems/proc.rst)
            self.kind = "process peak RSS (timed iterations)"
        except OSError:
            self.kind = "process peak RSS (since start)"

    def read(self) -> int | None:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        if self.kind == "process peak RSS (timed iterations)":
            peak = proc_bytes("/proc/self/status", "VmHWM")
            if peak is not None:
                return peak
        try:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        except (ImportError, OSError):
            return None
        self.kind = "process peak RSS (since start)"
        return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS: bytes; Linux: KiB


def is_oom(exc: BaseException) -> bool:
    """Out of memory on any device: torch's OOM error, the CPU allocator's, Python's."""
    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, (oom_type, MemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text.lower()
                                              or "can't allocate memory" in text)


def free_memory(device: torch.device, *, failed: bool = True) -> None:
    """Return what a finished or failed row held to the device.

    A full garbage collection (a few hundred ms with torch loaded) is needed after a
    failure (a traceback's frames form cycles) and on CUDA always: a model kept alive by a
    reference cycle would count in the next row's peak memory. On the CPU a successful
    row's tensors are freed by reference counting when the row returns.
    """
    if failed or device.type == "cuda":
        gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
