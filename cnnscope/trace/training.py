"""The training step's loss and optimizers: one definition for ``cnnscope memory`` and ``bench``.

The memory planner (``trace/memory.py``) steps a model with ``make_optimizer(params, name,
foreach=True)`` for each ``--optimizer`` name; ``cnnscope bench`` (``benchmark/workload.py``) trains
with ``make_optimizer(params, BENCH_OPTIMIZER)``. Both sum ``summed_loss`` over the model's
outputs, with targets of the kind ``loss_kind`` gives. A change here changes both, so what
``memory`` plans for ``sgd-nesterov`` stays the step ``bench`` times.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from cnnscope.errors import InvalidOptionError

# name -> (optimizer class, hyper-parameters). The learning rate changes no memory and no time.
OPTIMIZER_RECIPES: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, {"lr": 1e-4, "momentum": 0.9}),
    "sgd-nesterov": (torch.optim.SGD, {"lr": 1e-4, "momentum": 0.9, "nesterov": True}),
    "adam": (torch.optim.Adam, {"lr": 1e-4}),
    "adamw": (torch.optim.AdamW, {"lr": 1e-4}),
}
OPTIMIZERS = tuple(OPTIMIZER_RECIPES)

# timm's benchmark.py trains with create_optimizer_v2("sgd"): SGD, momentum 0.9, Nesterov;
# bench trains the same way so that its train steps compare with timm's.
BENCH_OPTIMIZER = "sgd-nesterov"


def make_optimizer(params: Any, name: str, **options: Any) -> torch.optim.Optimizer:
    """The optimizer called ``name`` (see ``OPTIMIZER_RECIPES``) over ``params``; ``options``
    are implementation choices that change neither the maths nor the state (``foreach``)."""
    if name not in OPTIMIZER_RECIPES:
        raise InvalidOptionError(f"unknown optimizer {name!r}", "use " + ", ".join(OPTIMIZERS))
    cls, hyper = OPTIMIZER_RECIPES[name]
    return cls(params, **hyper, **options)


def loss_kind(shape: Sequence[int]) -> str:
    """``ce`` (cross-entropy against class indices) for (N, C, ...) scores with C > 1, else
    ``mse`` (mean squared error against a float tensor of the output's shape)."""
    return "ce" if len(shape) >= 2 and shape[1] > 1 else "mse"


def summed_loss(outputs: Sequence[torch.Tensor], targets: Sequence[tuple[str, torch.Tensor]]
                ) -> torch.Tensor:
    """The loss of every output against its (kind, target), summed with weight 1 (auxiliary
    outputs included: the weight changes neither memory nor time)."""
    total = None
    for out, (kind, target) in zip(outputs, targets):
        # cross_entropy runs in float32 under autocast; mse_loss is given float32.
        loss = F.cross_entropy(out, target) if kind == "ce" else F.mse_loss(out.float(), target)
        total = loss if total is None else total + loss
    return total
