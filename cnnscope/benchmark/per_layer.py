"""Per-layer forward and backward time via hooks, joined with each layer's traced MACs.

Forward: a pre-hook and a post-hook on every leaf ``torch.nn`` layer (the layers the
tracer reports, under the same names, "#2" for a second call) take a timestamp each;
the layer's time is the difference. On CUDA the timestamps are events in the stream, so
this is the GPU time of the layer's kernels (plus any gap where the GPU waited for the
host, which is a real cost of the layer when the host is the bottleneck).

Backward: the forward post-hook registers a hook on the layer's output tensor. Autograd
calls it when the gradient of that output is ready, right before the layer's backward
runs; that is the start of the layer's backward. A layer's backward time is the time from
its start to the next layer's start (the last one ends when ``backward()`` returns). Ops
between leaf layers (a residual add, a concatenation) are therefore charged to the layer
whose backward runs just before them. Tensor hooks are used rather than
``register_full_backward_hook`` because those wrap outputs in a view that in-place
layers (``ReLU(inplace=True)``) may not modify.

The hooks cost time, more when the host is the bottleneck (small batches): the totals
report the sum of the layers, the whole pass with hooks on, and the whole pass without
hooks (the row's own figure), so the overhead of measuring is visible.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Callable, Protocol

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from cnnscope.benchmark.records import LayerTiming, PerLayer
from cnnscope.benchmark.stats import median
from cnnscope.benchmark.timing import Timer
from cnnscope.trace.dispatch import is_leaf_nn_layer
from cnnscope.trace.records import ModelReport


class PreparedModel(Protocol):
    """What per-layer timing needs from the runner's prepared model."""

    model: nn.Module
    train: bool
    phases: tuple[str, ...]

    def step(self, timer: Timer) -> list[Any]: ...


class LayerHooks:
    """Timestamps around every leaf layer's forward and at the start of its backward."""

    def __init__(self, model: nn.Module, timer: Timer, *, backward: bool):
        self.model = model
        self.timer = timer
        self.backward = backward
        self.names = {id(m): n for n, m in model.named_modules()}
        self.fwd: list[tuple[str, str, Any, Any]] = []  # (name, type, start, end)
        self.bwd: list[tuple[str, Any]] = []  # (name, start of its backward)
        self._calls: Counter[int] = Counter()
        self._open: dict[int, list[tuple[str, Any, Any]]] = defaultdict(list)
        self._handles: list[Any] = []

    def attach(self) -> "LayerHooks":
        for module in self.model.modules():
            if is_leaf_nn_layer(module):
                self._handles.append(module.register_forward_pre_hook(self._pre))
                self._handles.append(module.register_forward_hook(self._post))
        return self

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def start_iteration(self) -> None:
        self.fwd.clear()
        self.bwd.clear()
        self._calls.clear()
        self._open.clear()

    def _pre(self, module: nn.Module, args: tuple) -> None:
        call = self._calls[id(module)]
        self._calls[id(module)] += 1
        base = self.names.get(id(module), type(module).__name__)
        name = base if call == 0 else f"{base}#{call + 1}"
        self._open[id(module)].append((name, _grad_fn(args) if self.backward else None,
                                       self.timer.mark()))

    def _post(self, module: nn.Module, args: tuple, output: Any) -> None:
        end = self.timer.mark()
        name, input_fn, start = self._open[id(module)].pop()
        self.fwd.append((name, type(module).__name__, start, end))
        if not self.backward:
            return
        leaves, _ = tree_flatten(output)
        for t in leaves:
            if isinstance(t, torch.Tensor) and t.requires_grad:
                # A layer that hands its input through untouched (nn.Identity) has no
                # backward of its own; a hook on that tensor would fire together with its
                # producer's and take the producer's time. (An in-place layer such as
                # ReLU(inplace=True) returns the same tensor with a new grad_fn: hooked.)
                if input_fn is not None and t.grad_fn is input_fn:
                    break
                t.register_hook(self._backward_hook(name))
                break

    def _backward_hook(self, name: str) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            self.bwd.append((name, self.timer.mark()))

        return hook


def _grad_fn(args: tuple) -> Any:
    """The autograd node that produced the first input tensor (None for a leaf/no grad)."""
    leaves, _ = tree_flatten(args)
    for t in leaves:
        if isinstance(t, torch.Tensor):
            return t.grad_fn
    return None


def time_layers(work: PreparedModel, timer: Timer, iters: int, report: ModelReport, *,
                clean_fwd_ms: float | None, clean_bwd_ms: float | None) -> PerLayer:
    """Median per-layer times over ``iters`` hooked iterations (after one untimed one)."""
    hooks = LayerHooks(work.model, timer, backward=work.train).attach()
    fwd: dict[str, list[float]] = defaultdict(list)
    bwd: dict[str, list[float]] = defaultdict(list)
    types: dict[str, str] = {}
    order: list[str] = []
    whole_fwd: list[float] = []
    whole_bwd: list[float] = []
    loss_bwd: list[float] = []
    try:
        hooks.start_iteration()
        work.step(timer)  # first hooked call: hook set-up, allocations
        timer.sync()
        for _ in range(max(1, iters)):
            hooks.start_iteration()
            marks = work.step(timer)
            timer.sync()
            whole_fwd.append(timer.elapsed_ms(marks[0], marks[1]))
            for name, typ, start, end in hooks.fwd:
                if name not in types:
                    types[name] = typ
                    order.append(name)
                fwd[name].append(timer.elapsed_ms(start, end))
            if work.train and len(marks) >= 3:
                # marks: start, forward+loss done, backward done, step done
                whole_bwd.append(timer.elapsed_ms(marks[1], marks[2]))
                starts = hooks.bwd
                if starts:
                    loss_bwd.append(timer.elapsed_ms(marks[1], starts[0][1]))
                for i, (name, start) in enumerate(starts):
                    end = starts[i + 1][1] if i + 1 < len(starts) else marks[2]
                    bwd[name].append(timer.elapsed_ms(start, end))
    finally:
        hooks.remove()
        hooks.start_iteration()  # drop the tokens

    traced = {r.name: r for r in report.layers if r.kind == "module"}
    # The trace runs in float32; autocast rows compute in 16-bit: bytes at 2 per element.
    elem = 2 if getattr(work, "dtype", "fp32") in ("bf16", "fp16") else 4
    layers = tuple(
        LayerTiming(name=name, type=types[name],
                    macs=traced[name].macs if name in traced else None,
                    bwd_macs=traced[name].backward_macs if name in traced else None,
                    fwd_ms=median(fwd[name]),
                    bwd_ms=median(bwd[name]) if bwd.get(name) else None,
                    flops=traced[name].flops if name in traced else None,
                    bytes_moved=traced[name].bytes_moved * elem // 4 if name in traced else None)
        for name in order
    )
    train = work.train
    return PerLayer(
        layers=layers,
        samples=len(whole_fwd),
        sum_fwd_ms=sum(layer.fwd_ms for layer in layers),
        hooked_fwd_ms=median(whole_fwd),
        clean_fwd_ms=clean_fwd_ms,
        sum_bwd_ms=sum(layer.bwd_ms or 0.0 for layer in layers) if train else None,
        hooked_bwd_ms=median(whole_bwd) if whole_bwd else None,
        clean_bwd_ms=clean_bwd_ms if train else None,
        loss_bwd_ms=median(loss_bwd) if loss_bwd else None,
    )
