"""The training-memory planner through the API (``cnnscope memory``): ``plan_memory``,
``fit_batch``. The stepping and the search are ``cnnscope.analysis.memory``'s; here the
model is resolved and its input size checked by ``analyze`` first."""

from __future__ import annotations

from typing import Any, Sequence

from cnnscope.analysis.memory import (
    MemoryPlan,
    StepPlanner,
    check_options,
    largest_batch_within,
    parse_bytes,
)
from cnnscope.api.analyze_model import analyze
from cnnscope.errors import InvalidOptionError


def plan_memory(model, input_size: tuple[int, ...] | str | None = None, batch: int = 1, *,
                dtype: str = "fp32", optimizer: str = "sgd", inference: bool = False,
                channels_last: bool = False, freeze: Sequence[str] = (), device: str = "cpu",
                attention: str = "auto", **model_kwargs: Any) -> MemoryPlan:
    """Peak memory of one steady-state training step (or forward pass), on meta.

    ``model`` is anything ``cnnscope.analyze`` accepts but a built module (the planner
    builds its own copy on meta). ``dtype`` fp32, or bf16/fp16 autocast with fp32 master
    weights; ``optimizer`` sgd (momentum 0.9), sgd-nesterov (momentum 0.9, Nesterov: as
    ``cnnscope bench`` trains), adam or adamw; ``freeze`` module prefixes whose parameters
    get no gradient and no optimizer state. ``device`` the device planned for (``cpu``,
    ``cuda``: an sm_90 GPU, ``cuda:sm80``...): it decides which attention kernel
    ``F.scaled_dot_product_attention`` runs, unless ``attention`` names one (``math``,
    ``flash``, ``efficient``, ``cudnn``; ``auto``: the one PyTorch picks).
    """
    return _planner(model, input_size, dtype, optimizer, inference, channels_last, freeze,
                    model_kwargs, device, attention).plan(batch)


def fit_batch(model, budget: int | str, input_size: tuple[int, ...] | str | None = None, *,
              dtype: str = "fp32", optimizer: str = "sgd", inference: bool = False,
              channels_last: bool = False, freeze: Sequence[str] = (), max_batch: int = 1 << 20,
              device: str = "cpu", attention: str = "auto", **model_kwargs: Any) -> MemoryPlan:
    """The plan at the largest batch whose peak fits ``budget`` (bytes or ``"80GiB"``).

    Doubles the batch until the peak exceeds the budget, then bisects (every probe a
    meta step). A budget that batch 1 already exceeds is an error.
    """
    budget_bytes = parse_bytes(budget) if isinstance(budget, str) else int(budget)
    planner = _planner(model, input_size, dtype, optimizer, inference, channels_last, freeze,
                       model_kwargs, device, attention)
    return largest_batch_within(planner.plan, budget_bytes, max_batch)


def _planner(model, input_size, dtype, optimizer, inference, channels_last, freeze,
             model_kwargs, device="cpu", attention="auto") -> StepPlanner:
    from torch import nn

    from cnnscope.models import ModelSource, resolve
    from cnnscope.trace.sizes import DEFAULT_INPUT, parse_input_size

    check_options(dtype, optimizer, attention, device)
    if isinstance(model, nn.Module):
        raise InvalidOptionError("the memory planner needs a model name or factory, not a "
                                 "built nn.Module", "it builds its own copy on meta")
    if isinstance(input_size, str):
        input_size = parse_input_size(input_size)
    source = model if isinstance(model, ModelSource) else resolve(model, **model_kwargs)
    size = tuple(input_size or source.input_size or DEFAULT_INPUT)
    # Check the input size with the tracer first: a too-small input is a one-line error.
    analyze(source, size, 1)
    return StepPlanner(source, size, dtype, optimizer, inference, channels_last, freeze,
                       device, attention)
