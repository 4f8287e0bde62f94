"""One training-step recipe (trace/training.py) for ``cnnscope memory`` and ``cnnscope bench``.

The memory planner must plan the step bench times: same optimizer class and hyper-parameters
for the name bench trains with, and its help must say which name that is.
"""

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnscope
from cnnscope.analysis import memory as memory_plan
from cnnscope.benchmark.runner import BenchSettings
from cnnscope.benchmark.workload import Workload, make_loss
from cnnscope.trace import memory as memory_step
from cnnscope.trace import training

# Written out from their sources, not read from the code. timm's benchmark.py trains with
# create_optimizer_v2("sgd"): SGD, momentum 0.9, Nesterov; torch's defaults for the rest
# (Adam/AdamW betas (0.9, 0.999), eps 1e-8; AdamW weight decay 1e-2).
EXPECTED = {
    "sgd": (torch.optim.SGD, {"lr": 1e-4, "momentum": 0.9, "nesterov": False, "dampening": 0,
                              "weight_decay": 0}),
    "sgd-nesterov": (torch.optim.SGD, {"lr": 1e-4, "momentum": 0.9, "nesterov": True,
                                       "dampening": 0, "weight_decay": 0}),
    "adam": (torch.optim.Adam, {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8,
                                "weight_decay": 0, "amsgrad": False}),
    "adamw": (torch.optim.AdamW, {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8,
                                  "weight_decay": 1e-2, "amsgrad": False}),
}
BENCH_TRAINS_WITH = "sgd-nesterov"  # timm's benchmark.py, as above


def hyper_parameters(opt: torch.optim.Optimizer) -> dict:
    """Every setting of the optimizer's one parameter group but how it is computed."""
    return {k: v for k, v in opt.param_groups[0].items() if k not in ("params", "foreach")}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_memory_steps_each_optimizer_as_its_name_says(name):
    opt = memory_step.make_optimizer([nn.Parameter(torch.zeros(3))], name)
    cls, expected = EXPECTED[name]
    assert type(opt) is cls
    assert {k: opt.param_groups[0][k] for k in expected} == expected
    assert opt.param_groups[0]["foreach"] is True  # CUDA's default, planned for on any device


def test_every_optimizer_name_is_one_of_the_recipes():
    # analysis/memory.py validates --optimizer without importing torch: its names are the recipes'.
    assert memory_plan.OPTIMIZERS == training.OPTIMIZERS == memory_step.OPTIMIZERS == tuple(EXPECTED)


def test_bench_trains_with_the_optimizer_memory_plans_under_the_same_name():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    report = cnnscope.analyze(model, input_size=(3, 8, 8), batch=2, train=True)
    work = Workload(model, torch.randn(2, 3, 8, 8), report, "fp32", True,
                    BenchSettings(device="cpu"), torch.device("cpu"))
    planned = memory_step.make_optimizer(list(model.parameters()), training.BENCH_OPTIMIZER)
    assert training.BENCH_OPTIMIZER == BENCH_TRAINS_WITH
    assert type(work.opt) is type(planned) is EXPECTED[BENCH_TRAINS_WITH][0]
    assert hyper_parameters(work.opt) == hyper_parameters(planned)
    expected = EXPECTED[BENCH_TRAINS_WITH][1]
    assert {k: hyper_parameters(work.opt)[k] for k in expected} == expected


def test_the_memory_help_says_which_optimizer_bench_trains_with():
    import typer.main

    from cnnscope.cli.main import app

    command = typer.main.get_group(app).commands["memory"]
    (option,) = [p for p in command.params if "--optimizer" in p.opts]
    phrase = option.help.index("as bench trains")
    names = [m for m in re.finditer(r"(?<![\w-])(sgd-nesterov|sgd|adamw|adam)(?![\w-])", option.help)
             if m.start() < phrase]
    assert names[-1].group(1) == BENCH_TRAINS_WITH, option.help


def test_memory_and_bench_take_the_same_loss_of_the_same_outputs():
    # (N, C) and (N, C, H, W) scores: cross-entropy against class indices; (N, 1) and (N,):
    # mean squared error against a float tensor of the output's shape.
    shapes = [(2, 10), (2, 5, 4, 4), (2, 1), (2,)]
    assert [training.loss_kind(s) for s in shapes] == ["ce", "ce", "mse", "mse"]
    targets = memory_step.make_targets(shapes, torch.device("cpu"))
    assert [(kind, tuple(t.shape), t.dtype) for kind, t in targets] == [
        ("ce", (2,), torch.long), ("ce", (2, 4, 4), torch.long),
        ("mse", (2, 1), torch.float32), ("mse", (2,), torch.float32)]
    outputs = [torch.randn(s) for s in shapes]
    by_hand = (F.cross_entropy(outputs[0], targets[0][1]) + F.cross_entropy(outputs[1], targets[1][1])
               + F.mse_loss(outputs[2], targets[2][1]) + F.mse_loss(outputs[3], targets[3][1]))
    assert torch.equal(memory_step.loss_of(outputs, targets), by_hand)
    bench_loss = make_loss(shapes, torch.device("cpu"))(outputs)  # random targets of the same kinds
    assert bench_loss.shape == () and torch.isfinite(bench_loss)
