"""cnnscope.register_formula: the public way to count a user's own op or module."""

import runpy
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnscope
from cnnscope.errors import TraceError
from cnnscope.ops import cost as costs
from cnnscope.ops import registry as formulas
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
        said = r"the formula for double_it \(<lambda>\) returned 'lots'; return \(macs, flops\)"
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


# ---------------------------------------------------------------- what a formula may return

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

BAD_COUNTS = [-1, -10**6, 2**63, 2**70, 1.9, 0.5, -0.5, float("nan"), float("inf"),
              -float("inf"), True, False, "7", None, 3 + 0j]


def _traced_with(formula):
    try:
        cnnscope.register_formula("double_it", formula)
        return trace_module(Doubler(), (4,))
    finally:
        formulas.FORMULAS.pop("double_it", None)
        formulas._USER_OPS.discard("double_it")


def named_formula(value):
    def doubling_cost(args, outs):
        return value
    return doubling_cost


@pytest.mark.parametrize("bad", BAD_COUNTS)
@pytest.mark.parametrize("slot", [0, 1])
def test_a_count_that_is_not_a_non_negative_int64_names_the_op_and_the_formula(bad, slot):
    pair = [4, 8]
    pair[slot] = bad
    label = ("MACs", "FLOPs")[slot]
    with pytest.raises(TraceError, match=rf"the formula for double_it \(.*doubling_cost\) "
                                         rf"returned {label} = .*non-negative integers below "
                                         r"2\*\*63"):
        _traced_with(named_formula(tuple(pair)))


def test_integral_floats_and_numpy_integers_are_counts():
    np = pytest.importorskip("numpy")
    assert _traced_with(named_formula((2.0 * 3, np.int64(8)))).totals.macs == 2 * 3
    assert _traced_with(named_formula(costs.Cost(5, 2**63 - 1))).totals.flops == 2**63 - 1


def test_a_module_formula_is_checked_too():
    class Mixer(nn.Module):
        def forward(self, x):
            return x * 2

    def mixer_cost(module, ins, outs):
        return (-10**6, -5)

    cnnscope.register_formula(Mixer, mixer_cost)
    try:
        with pytest.raises(TraceError, match=r"formula for Mixer \(.*mixer_cost\) returned MACs"):
            trace_module(nn.Sequential(Mixer()), (4,))
    finally:
        formulas.MODULE_FORMULAS.pop(Mixer, None)


@settings(max_examples=80, deadline=None)
@given(st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True)))
def test_property_a_count_is_taken_exactly_when_it_is_an_int64_count(value):
    ok = not isinstance(value, bool) and value == value and abs(value) != float("inf") \
        and float(value).is_integer() and 0 <= value <= 2**63 - 1 \
        and (isinstance(value, int) or value == int(value))
    try:
        report = _traced_with(named_formula((value, 0)))
    except TraceError:
        assert not ok
    else:
        assert ok and report.totals.macs == int(value)


def test_the_command_line_says_it_in_one_line_exit_2(tmp_path, run):
    net = tmp_path / "net.py"
    net.write_text(
        "import cnnscope, torch\nfrom torch import nn\n"
        "class Odd(nn.Module):\n    def forward(self, x):\n        return x + 1\n"
        "def negative_cost(module, ins, outs):\n    return (-10**6, -5)\n"
        "cnnscope.register_formula(Odd, negative_cost)\n"
        "def build():\n    return nn.Sequential(Odd())\nbuild.input_size = (3, 4, 4)\n")
    result = run("summary", f"{net}:build")
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "formula for Odd (negative_cost) returned MACs = -1000000" in lines[0]
