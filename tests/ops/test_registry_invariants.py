"""What every entry of the op registry holds (instead of frozen copies of old name lists).

Each check runs on the registry, and on an entry made to break it: a check that cannot
fail would guard nothing.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import SimpleNamespace

import pytest

import cnnscope.ops
from cnnscope.ops import registry
from cnnscope.ops.cost import free
from cnnscope.ops.entry import BACKWARD_IS_A_BACKWARD, OpEntry, RfRule, entry
from cnnscope.ops.registry import ENTRIES, FAMILIES, lookup

ALL = list(dict.fromkeys(e for family in FAMILIES for e in family.ENTRIES))


def _cost(args, outs):
    return (0, 1)


def test_every_alias_of_an_entry_gives_that_entry():
    for e in ALL:
        for name in e.names:
            assert lookup(name) is e, name


def test_every_family_module_is_listed():
    modules = {info.name for info in pkgutil.iter_modules(cnnscope.ops.__path__)}
    # a family module: a tuple of entries (the registry's own ENTRIES is the dict by name)
    with_entries = {m for m in modules if isinstance(
        getattr(importlib.import_module(f"cnnscope.ops.{m}"), "ENTRIES", None), tuple)}
    assert with_entries == {f.__name__.rsplit(".", 1)[1] for f in FAMILIES}


def test_no_name_is_in_two_entries():
    assert registry.names_in_two_entries() == []
    assert len(ENTRIES) == sum(len(e.names) for e in ALL)
    broken = SimpleNamespace(ENTRIES=(entry("relu", cost=_cost, backward="x"),))
    assert registry.names_in_two_entries([*FAMILIES, broken]) == ["relu"]
    with pytest.raises(ValueError, match="'relu' is in two entries"):
        registry.build_index([*FAMILIES, broken])


def _windowed() -> list[OpEntry]:
    family_entries = [e for f in registry.WINDOWED_FAMILIES for e in f.ENTRIES]
    ruled = [e for e in ALL if e.rf in (RfRule.WINDOW, RfRule.ADAPTIVE)]
    return list(dict.fromkeys([*family_entries, *ruled]))


def test_every_windowed_op_has_geometry_and_a_receptive_field_rule():
    assert registry.windows_without_geometry(_windowed()) == []
    # conv2d, cudnn_convolution and mkldnn_convolution had a cost and nothing else before
    for name in ("conv2d", "cudnn_convolution", "mkldnn_convolution", "conv_transpose2d",
                 "max_pool1d_with_indices", "mkldnn_max_pool2d", "adaptive_avg_pool1d"):
        assert lookup(name).geometry is not None and lookup(name).rf is not None, name


def test_a_windowed_op_without_geometry_or_rule_is_caught():
    conv = lookup("convolution")
    no_geometry = OpEntry(("my_conv",), cost=_cost, rf=RfRule.WINDOW, backward="x")
    no_rule = OpEntry(("my_pool",), cost=_cost, geometry=conv.geometry, backward="x")
    assert registry.windows_without_geometry([conv, no_geometry, no_rule]) == [
        "my_conv", "my_pool"]
    # a layer's entry and a backward op are not windows of their own
    layer = OpEntry(("MyConv2d",), rf=RfRule.WINDOW)
    backward = OpEntry(("my_conv_backward",), cost=_cost, backward=BACKWARD_IS_A_BACKWARD)
    assert registry.windows_without_geometry([layer, backward]) == []


def test_every_forward_cost_has_a_backward_rule_or_says_why_not():
    assert registry.forward_costs_without_backward(ALL, ENTRIES) == []
    silent = OpEntry(("my_op",), cost=_cost)
    dangling = OpEntry(("my_op2",), cost=_cost, backward=("no_such_backward",))
    uncounted = OpEntry(("my_op3",), cost=_cost, backward=("Conv2d",))  # an entry, no cost
    blank = OpEntry(("my_op4",), cost=_cost, backward=" ")
    assert registry.forward_costs_without_backward(
        [silent, dangling, uncounted, blank], ENTRIES) == ["my_op", "my_op2", "my_op3", "my_op4"]
    assert registry.forward_costs_without_backward(
        [OpEntry(("my_op5",), cost=_cost, backward=("convolution_backward",))], ENTRIES) == []


def test_every_meta_kernel_belongs_to_an_op_with_a_cost_or_free():
    assert registry.kernels_without_cost(ALL) == []
    assert registry.kernels_without_cost([OpEntry(("my_op",), meta=lambda *a: None)]) == ["my_op"]
    assert registry.kernels_without_cost([OpEntry(("my_op",), cost=free, meta=print)]) == []


def test_flags_are_consistent():
    for e in ALL:
        assert e.autocast in (None, "low", "fp32"), e.name
        assert bool(e.torch_functions) == (e.autocast is not None), e.name
        if e.weighted:  # a layer the papers count in depth mixes positions or channels
            assert e.rf in (RfRule.WINDOW, RfRule.DEFORMABLE, RfRule.LINEAR, RfRule.MIX_ALL), e.name
        if e.shape_only:
            assert e.cost is free and e.rf is RfRule.RESHAPE, e.name
