"""Measured memory of one training step on real tensors: the check of ``cnnscope memory``.

The same steady-state step the planner runs on meta (``cnnscope.trace.memory``), run on
a real device with real weights, measured two ways:

* **allocator**: on CUDA, the tensors alive when the step starts plus what
  ``torch.cuda.max_memory_allocated`` rose above ``memory_allocated()`` at the reset
  (``step_peak``): the raw peak also holds allocations the planner cannot see, made
  before the step (cuBLAS's workspace, 32 MiB on sm90, through the caching allocator;
  workspaces left by CUDA-graph side streams), reported apart as ``workspace_bytes``;
  on the CPU, the allocator's own allocation and free events recorded by
  ``torch.profiler`` (``profile_memory=True``), added up in time order on top of the
  tensors alive when the step starts. Independent of the planner's bookkeeping: it sees
  every byte the CPU allocator hands out, oneDNN scratch buffers included.
* **live storage**: the planner's ``LiveStorage`` dispatch mode on the real tensors (the
  same definition as the estimate, on real kernels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from cnnscope.trace.memory import (
    LiveStorage,
    make_optimizer,
    make_targets,
    run_step,
)
from cnnscope.trace.tensors import tensors_in


@dataclass(frozen=True)
class MeasuredStep:
    device: str
    allocator_peak_bytes: int  # CUDA max_memory_allocated, or CPU allocator events
    live_peak_bytes: int  # peak of live tensor storage (LiveStorage on real tensors)
    method: str  # how allocator_peak_bytes was measured
    # CUDA: bytes allocated at the reset that are no tensor of the step (library
    # workspaces), and the raw max_memory_allocated; None on the CPU.
    workspace_bytes: int | None = None
    raw_peak_bytes: int | None = None


def step_peak(live_at_start: int, baseline: int, raw_peak: int) -> tuple[int, int]:
    """(the step's peak as the planner counts it, the workspaces' bytes).

    ``baseline`` is ``memory_allocated()`` at the reset: the step's tensors alive then
    (``live_at_start``) plus whatever else the allocator holds (workspaces). The step adds
    ``raw_peak - baseline`` on top of its live tensors; the rest is the workspaces'.
    """
    return live_at_start + max(0, raw_peak - baseline), max(0, baseline - live_at_start)


def _storage_bytes(tensors) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        if isinstance(t, torch.Tensor):
            st = t.untyped_storage()
            seen[st._cdata] = st.nbytes()
    return sum(seen.values())


def _sdpa_kernel(attention: str):
    """A maker of the context that forces ``attention`` (None for ``auto``)."""
    if attention == "auto":
        return lambda: None
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION,
               "efficient": SDPBackend.EFFICIENT_ATTENTION,
               "cudnn": SDPBackend.CUDNN_ATTENTION}[attention]
    return lambda: sdpa_kernel(backend)


def _cpu_allocator_peak(step) -> int:
    """Peak of (allocations - frees) on the CPU during ``step()``, from profiler events."""
    from torch._C._autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == DeviceType.CPU]
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for e in events:
        current += e.nbytes()
        peak = max(peak, current)
    return peak


def measure_real(model: torch.nn.Module, input_size: Sequence[int], batch: int,
                 device: str | torch.device = "cpu", *, optimizer: str = "sgd",
                 dtype: str = "fp32", inference: bool = False, channels_last: bool = False,
                 seed: int = 0, attention: str = "auto") -> MeasuredStep:
    """Measure the steady-state step of ``model`` (built on ``device``) both ways.

    ``attention``: ``auto`` lets PyTorch pick the kernel of ``F.scaled_dot_product_attention``;
    ``math``, ``flash``, ``efficient`` or ``cudnn`` forces it (``torch.nn.attention.sdpa_kernel``).
    """
    dev = torch.device(device)
    kernel = _sdpa_kernel(attention)
    torch.manual_seed(seed)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    shape = (batch, *input_size)
    fmt = torch.channels_last if channels_last and len(shape) == 4 else torch.contiguous_format
    x = torch.randn(shape, device=dev).contiguous(memory_format=fmt)
    if inference:
        model.eval()
        opt, targets = None, None
    else:
        model.train()
        opt = make_optimizer([p for p in model.parameters() if p.requires_grad], optimizer)
        with torch.no_grad():
            shapes = [tuple(t.shape) for t in tensors_in(model(x))]
        targets = make_targets(shapes, dev)
        run_step(model, x, optimizer=opt, targets=targets, dtype=dtype,
                 attention=kernel())  # creates the state
        opt.zero_grad(set_to_none=True)

    def step() -> None:
        run_step(model, x, optimizer=opt, targets=targets, dtype=dtype, attention=kernel())
        if opt is not None:
            opt.zero_grad(set_to_none=True)

    tracker = LiveStorage()
    run_step(model, x, optimizer=opt, targets=targets, dtype=dtype, tracker=tracker,
             attention=kernel())
    if opt is not None:
        opt.zero_grad(set_to_none=True)
    live = tracker.peak.bytes
    state = [t for s in (opt.state.values() if opt is not None else ())
             for t in s.values() if isinstance(t, torch.Tensor) and t.device.type == dev.type]
    base = _storage_bytes([*model.parameters(), *model.buffers(), *state, x,
                           *(t for _, t in targets or [])])
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        baseline = torch.cuda.memory_allocated(dev)
        step()
        torch.cuda.synchronize(dev)
        raw = torch.cuda.max_memory_allocated(dev)
        peak, workspaces = step_peak(base, baseline, raw)
        return MeasuredStep(str(dev), peak, live,
                            "torch.cuda.max_memory_allocated above memory_allocated() at the "
                            "reset, on top of the tensors alive at the start of the step",
                            workspace_bytes=workspaces, raw_peak_bytes=raw)
    return MeasuredStep(str(dev), base + _cpu_allocator_peak(step), live,
                        "CPU allocator events (torch.profiler, profile_memory=True) on top of "
                        "the tensors alive at the start of the step")
