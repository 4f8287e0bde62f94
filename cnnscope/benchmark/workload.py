"""What one benchmark row runs: a model, an input and (training) a loss and optimizer.

``Workload.step`` runs one iteration and returns the timer's marks around each phase
(forward; forward, backward, optimizer step; or one CUDA-graph replay).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from cnnscope.benchmark.precision import autocast
from cnnscope.benchmark.timing import Timer
from cnnscope.errors import first_line
from cnnscope.trace.records import ModelReport
from cnnscope.trace.training import BENCH_OPTIMIZER, loss_kind, make_optimizer, summed_loss

if TYPE_CHECKING:
    from cnnscope.benchmark.settings import BenchSettings


# torch.compile's backend (tests use "eager": dynamo's capture without inductor's minutes).
COMPILE_BACKEND = "inductor"


def compiled_graphs() -> int:
    """Graphs dynamo has compiled in this process so far (a cumulative counter)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class UnsupportedConfig(Exception):
    """The model cannot run this way (e.g. a CUDA graph cannot capture it): an
    "unsupported" row, not an error."""



def make_loss(output_shapes: Sequence[tuple[int, ...]], device: torch.device
              ) -> Callable[[Any], torch.Tensor]:
    """A loss over every output tensor, with fixed random targets made once.

    Class scores (N, C) or per-pixel scores (N, C, H, W): cross-entropy against random
    class indices. Anything else: mean squared error against a random tensor. Auxiliary
    outputs are summed in with weight 1 (the weight changes no timing).
    """
    targets: list[tuple[str, torch.Tensor]] = []
    for shape in output_shapes:
        if loss_kind(shape) == "ce":
            targets.append(("ce", torch.randint(0, shape[1], (shape[0], *shape[2:]), device=device)))
        else:
            targets.append(("mse", torch.randn(shape, device=device)))

    def loss_fn(output: Any) -> torch.Tensor:
        outs = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor)]
        if len(outs) != len(targets):
            raise RuntimeError(f"the model returned {len(outs)} tensors, the trace saw {len(targets)}")
        return summed_loss(outs, targets)

    return loss_fn


class Workload:
    """A model, an input and (training) a loss and optimizer, ready to run steps."""

    def __init__(self, model: nn.Module, x: torch.Tensor, report: ModelReport, dtype: str,
                 train: bool, settings: BenchSettings, device: torch.device):
        self.model = model
        self.x = x
        self.dtype = dtype
        self.train = train
        self.device = device
        self.net: Callable[..., Any] = model
        self.graph: Any = None
        self.static: Any = None
        self.graphs_before: int | None = None
        if settings.compile:
            import torch._dynamo as dynamo

            # Dynamo caches compiled code per forward *code object*, so a fresh model of
            # the same class would reuse an earlier row's graphs, each new batch would
            # recompile with a dynamic batch size, and past recompile_limit (8) a sweep
            # would silently run eager. Each compiled row starts from a clean cache, with
            # static shapes; ``graphs_before`` lets the row see whether anything compiled.
            dynamo.reset()
            self.graphs_before = compiled_graphs()
            # reduce-overhead is inductor's CUDA-graph mode: --compile --cuda-graphs.
            mode = "reduce-overhead" if settings.cuda_graphs and COMPILE_BACKEND == "inductor" else None
            self.net = torch.compile(model, mode=mode, dynamic=False, backend=COMPILE_BACKEND)
        if train:
            self.loss_fn = make_loss(report.output_shapes, device)
            # SGD, momentum 0.9, Nesterov, as timm's benchmark.py trains (trace/training.py).
            self.opt = make_optimizer(model.parameters(), BENCH_OPTIMIZER)
        self.manual_graph = settings.cuda_graphs and not settings.compile
        self.phases: tuple[str, ...] = ("fwd", "bwd", "opt") if train else ("fwd",)

    def ran_eager(self) -> bool | None:
        """For a compiled row, True when dynamo compiled no graph (it fell back to eager);
        None for a row that was not compiled."""
        if self.graphs_before is None:
            return None
        return compiled_graphs() == self.graphs_before

    # -- eager steps: marks around each phase
    def _infer_step(self, timer: Timer) -> list[Any]:
        with torch.inference_mode():
            m0 = timer.mark()
            with autocast(self.device, self.dtype):
                self.net(self.x)
            m1 = timer.mark()
        return [m0, m1]

    def _train_step(self, timer: Timer) -> list[Any]:
        self.opt.zero_grad(set_to_none=True)
        m0 = timer.mark()
        with autocast(self.device, self.dtype):
            out = self.net(self.x)
            loss = self.loss_fn(out)
        m1 = timer.mark()
        loss.backward()  # outside autocast: backward ops follow the forward's dtypes
        m2 = timer.mark()
        self.opt.step()
        m3 = timer.mark()
        return [m0, m1, m2, m3]

    # -- CUDA graph: capture once, replay
    def capture(self) -> None:
        """Capture one whole step into a CUDA graph (docs: "Whole-network capture").

        Eager warm-up runs on a side stream first, as the documentation requires (it
        also creates the optimizer's momentum buffers outside the capture).
        """
        dev = self.device
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):
            for _ in range(3):
                if self.train:
                    self.opt.zero_grad(set_to_none=True)
                self._graph_body(cache_enabled=True)
        torch.cuda.current_stream(dev).wait_stream(side)
        if self.train:
            self.opt.zero_grad(set_to_none=True)  # backward in the capture allocates .grad
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._graph_body(cache_enabled=False)
        except Exception as exc:  # capture refuses sync points, host reads, dynamic shapes
            raise UnsupportedConfig(f"CUDA graph capture failed: {first_line(exc)}") from None
        self.graph = graph
        self.phases = ("graph",)

    def _graph_body(self, cache_enabled: bool) -> None:
        if self.train:
            with autocast(self.device, self.dtype, cache_enabled=cache_enabled):
                loss = self.loss_fn(self.model(self.x))
            loss.backward()
            self.opt.step()
        else:
            with torch.inference_mode(), autocast(self.device, self.dtype, cache_enabled=cache_enabled):
                self.static = self.model(self.x)

    def _graph_step(self, timer: Timer) -> list[Any]:
        m0 = timer.mark()
        self.graph.replay()
        m1 = timer.mark()
        return [m0, m1]

    def step(self, timer: Timer) -> list[Any]:
        """Run one iteration; return its marks (len(phases) + 1 tokens)."""
        if self.graph is not None:
            return self._graph_step(timer)
        return self._train_step(timer) if self.train else self._infer_step(timer)
