"""Meta stand-ins for a built module's tensors: trace a module that lives on the CPU or
a GPU on the meta device without reading, copying or changing its weights.

``meta_stand_ins`` takes the tracer's lock: a swap and a trace of the same module take
turns. ``cnnscope.api`` re-exports ``meta_copy`` and ``meta_stand_ins``.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from cnnscope.trace.tracer import TRACE_LOCK


def module_device(module: nn.Module) -> torch.device | None:
    """Where a module's first parameter (or buffer) lives; None when it has neither."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return None


def meta_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose parameters and buffers are meta tensors.

    Nothing of the original changes and no weight is copied: the stand-ins are passed
    to ``copy.deepcopy`` through its memo, so the copy shares structure (and shared
    weights stay shared) but holds no storage. Plain tensor attributes that are neither
    parameters nor buffers are copied as they are.
    """
    memo: dict[int, Any] = {}
    for p in module.parameters():
        if id(p) not in memo:
            memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"),
                                       requires_grad=p.requires_grad)
    for b in module.buffers():
        if id(b) not in memo:
            memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(module, memo)


@contextmanager
def meta_stand_ins(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` itself, holding meta stand-ins for its parameters and buffers until exit.

    Each parameter or buffer slot gets a meta tensor of the same shape, dtype and
    requires_grad (shared weights share one stand-in), and its original object back on
    exit, whatever happens: the weights are never read, written or copied. It is about
    7x faster than ``meta_copy`` (10 ms vs 70 ms for ResNet-152's 930 tensors) but, for
    its duration, the module must not be used elsewhere (traces and swaps in this process
    take turns; other code running the module in another thread would see meta tensors).
    """
    with TRACE_LOCK:  # two threads must not swap the same module's tensors at once
        with _swapped_for_meta(module):
            yield module


@contextmanager
def _swapped_for_meta(module: nn.Module) -> Iterator[None]:
    stand_in: dict[int, torch.Tensor] = {}
    swapped: list[tuple[dict, str, torch.Tensor]] = []
    try:
        for m in module.modules():
            for store, is_param in ((m._parameters, True), (m._buffers, False)):
                for key, t in store.items():
                    if t is None or t.device.type == "meta":
                        continue
                    new = stand_in.get(id(t))
                    if new is None:
                        new = torch.empty_like(t, device="meta")
                        if is_param:
                            new = nn.Parameter(new, requires_grad=t.requires_grad)
                        stand_in[id(t)] = new
                    swapped.append((store, key, t))
                    store[key] = new
        yield
    finally:
        for store, key, original in reversed(swapped):
            store[key] = original
