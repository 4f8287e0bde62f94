"""cnnscope.register_formula: the public way to count a user's own op or module."""

import runpy
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnscope
from cnnscope.errors import TraceError
from cnnscope.trace import formulas
from cnnscope.trace.tracer import trace_module

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_op.py"


@torch.library.custom_op("cnnscope_test::double_it", mutates_args=())
def double_it(x: torch.Tensor) -> torch.Tensor:
    return x * 2


@double_it.register_fake
def _(x):
    return torch.empty_like(x)


class Doubler(nn.Module):
    def forward(self, x):
        return double_it(x)


def test_custom_op_is_unsupported_until_registered_then_counted_on_every_device():
    assert trace_module(Doubler(), (4, 5)).unsupported == (("double_it", 1),)
    try:
        cnnscope.register_formula(torch.ops.cnnscope_test.double_it,
                                  lambda args, outs: (0, args[0][0] * args[0][1] * args[0][2]))
        for device in ("meta", "cpu"):
            report = trace_module(Doubler(), (4, 5), 3, device=device)
            assert report.unsupported == ()
            assert report.totals.flops == 3 * 4 * 5  # one multiply per element
    finally:
        formulas.FORMULAS.pop("double_it", None)
        formulas._USER_OPS.discard("double_it")


def test_builtin_formula_is_replaced_only_when_asked():
    with pytest.raises(ValueError, match="built-in cost formula"):
        cnnscope.register_formula("relu", lambda args, outs: (0, 0))
    original = formulas.FORMULAS["relu"]
    try:
        cnnscope.register_formula("aten::relu", lambda args, outs: (0, 5), replace=True)
        report = trace_module(nn.Sequential(nn.ReLU()).to("meta"), (3,))
        assert report.totals.flops == 5
    finally:
        formulas.FORMULAS["relu"] = original
        formulas._USER_OPS.discard("relu")
        formulas._revision[0] += 1
    assert trace_module(nn.Sequential(nn.ReLU()).to("meta"), (3,)).totals.flops == 3


def test_a_formula_must_return_macs_and_flops():
    try:
        cnnscope.register_formula("double_it", lambda args, outs: "lots")
        # The tracer's own error naming the formula, not any exception a crash would raise.
        said = r"the formula for double_it returned 'lots'; return \(macs, flops\)"
        with pytest.raises(TraceError, match=said):
            trace_module(Doubler(), (4,))
    finally:
        formulas.FORMULAS.pop("double_it", None)
        formulas._USER_OPS.discard("double_it")


def test_example_counts_its_op_and_module_by_their_formulas():
    ns = runpy.run_path(str(EXAMPLE))  # registers both formulas (again: replaced silently)
    ns = runpy.run_path(str(EXAMPLE))
    try:
        for device in ("meta", "cpu"):
            model = ns["build"]()
            report = cnnscope.analyze(model, (3, 32, 32), device=None if device == "meta" else device)
            rows = {r.name: r for r in report.visible_layers()}
            assert report.unsupported == ()
            assert rows["stem"].macs == 32 * 32 * 16 * 3 * 3 * 3
            assert rows["shift_mix"].macs == 3 * 16 * 32 * 32
            # the module is one layer with its formula's cost and both its parameters
            assert rows["mix"].type == "LowRankMixer"
            assert rows["mix"].macs == 2 * 32 * 32 * 16 * 4
            assert rows["mix"].params == 4 * 16 + 16 * 4
            assert not any(name.startswith("mix.") for name in rows)
            assert rows["head"].macs == 16 * 10
            assert report.totals.macs == (32 * 32 * 16 * 27 + 3 * 16 * 32 * 32
                                          + 2 * 32 * 32 * 16 * 4 + 16 * 10)
    finally:
        formulas.MODULE_FORMULAS.pop(ns["LowRankMixer"], None)
        formulas.FORMULAS.pop("shift_mix", None)
        formulas._USER_OPS.discard("shift_mix")


def test_example_from_the_command_line(run):
    result = run("params", f"{EXAMPLE}:build", "-f", "json")
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.stdout)
    assert data["unsupported_ops"] == {}
    assert data["totals"]["macs"] == (32 * 32 * 16 * 27 + 3 * 16 * 32 * 32
                                      + 2 * 32 * 32 * 16 * 4 + 16 * 10)
