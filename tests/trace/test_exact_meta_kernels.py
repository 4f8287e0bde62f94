"""Kernels marked ``meta_exact`` give PyTorch's meta results to the stride.

The memory planner (``cnnscope.trace.memory.LiveStorage``) counts every storage an op
returns, and a later ``view``/``reshape`` is free or a copy depending on strides, so it
takes a registry kernel only where the kernel is exact: same shape, strides, dtype,
storage size and offset as PyTorch's own meta kernel, for every call it does not decline.
Checked here two ways: over a sweep of layouts, dtypes and options written out below
(degenerate sizes of 1 included, where layouts are ambiguous), and op by op in real
planned steps of zoo models; and the plans themselves are the same either way.
"""

import itertools
from collections import Counter

import pytest
import torch

from cnnscope.api import plan_memory
from cnnscope.ops.registry import OPS
from cnnscope.ops.norm import batch_norm_backward_kernel, batch_norm_kernel
from cnnscope.trace import memory as trace_memory

aten = torch.ops.aten


def described(out):
    if out is None:
        return None
    if isinstance(out, torch.Tensor):
        return (tuple(out.shape), out.stride(), out.dtype, out.device.type,
                out.untyped_storage().nbytes(), out.storage_offset())
    return [described(o) for o in out]


def test_the_exact_entries_are_the_batch_norm_ones():
    # A new meta_exact entry needs its own sweep here.
    exact = {name for name, spec in OPS.items() if spec.meta_exact}
    assert exact == {"native_batch_norm", "_native_batch_norm_legit",
                     "_native_batch_norm_legit_no_training", "native_batch_norm_backward",
                     "cudnn_batch_norm_backward", "miopen_batch_norm_backward",
                     "batch_norm_backward"}


# Degenerate sizes of 1 included: there a layout is both contiguous and channels-last, and
# PyTorch's strides for the size-1 dims are its own choice.
SHAPES = [(8, 16), (8, 16, 5), (8, 16, 6, 6), (1, 16, 1, 1), (8, 16, 1, 6), (2, 16, 3, 4, 4),
          (1, 16, 1, 1, 1)]
CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}
# float64 keeps its own precision for the statistics, the half types compute them in float32
DTYPES = [torch.float32, torch.bfloat16, torch.float64]


def layouts(shape, dtype, odd=True):
    """The input in each layout: contiguous, channels-last and, with ``odd``, two the
    kernels decline (a permuted view, every other row of a larger tensor)."""
    x = torch.empty(shape, device="meta", dtype=dtype)
    yield "contiguous", x
    if len(shape) in CHANNELS_LAST:
        yield "channels_last", x.contiguous(memory_format=CHANNELS_LAST[len(shape)])
    if odd:
        yield "permuted", torch.empty(shape[::-1], device="meta", dtype=dtype).permute(
            *range(len(shape) - 1, -1, -1))
        yield "strided", torch.empty((shape[0] * 2, *shape[1:]), device="meta", dtype=dtype)[::2]


def parameter_dtypes(dtype):
    return sorted({dtype, torch.float32}, key=str)  # a half input's parameters: either


def calls():
    """(overload, label, func, args) for every batch-norm forward overload the kernel reads."""
    for shape, dtype in itertools.product(SHAPES, DTYPES):
        channels = shape[1]
        for (layout, x), pdtype, (affine, stats) in itertools.product(
                layouts(shape, dtype), parameter_dtypes(dtype),
                ((True, True), (False, True), (True, False))):
            def m():
                return torch.empty(channels, device="meta", dtype=pdtype)
            w, b = (m(), m()) if affine else (None, None)
            rm, rv = (m(), m()) if stats else (None, None)
            label = f"{shape} {dtype} {layout} params {pdtype} affine={affine} stats={stats}"
            for training in (True, False):
                yield "native", f"{label} training={training}", aten.native_batch_norm.default, \
                    (x, w, b, rm, rv, training, 0.1, 1e-5)
            if stats:  # its running statistics are not optional
                yield "legit", label, aten._native_batch_norm_legit.default, \
                    (x, w, b, rm, rv, True, 0.1, 1e-5)
                yield "no_training", label, aten._native_batch_norm_legit_no_training.default, \
                    (x, w, b, rm, rv, 0.1, 1e-5)
            yield "no_stats", label, aten._native_batch_norm_legit.no_stats, (x, w, b, True, 0.1, 1e-5)


def pytorchs(func, args):
    try:
        return func(*args)
    except Exception as exc:  # the kernel must decline these
        return exc


def test_batch_norm_forward_as_pytorch_to_the_stride_or_declined():
    taken, wrong = Counter(), []
    for overload, label, func, args in calls():
        fast = batch_norm_kernel(func.overloadpacket.__name__, func, args, {})
        if fast is NotImplemented:
            continue
        taken[overload] += 1
        real = pytorchs(func, args)
        if isinstance(real, Exception):
            wrong.append((label, "PyTorch raises", repr(real)[:80]))
        elif described(fast) != described(real):
            wrong.append((label, described(fast), described(real)))
    assert wrong == []
    assert set(taken) == {"native", "legit", "no_training", "no_stats"}


def test_batch_norm_forward_declines_odd_layouts_and_what_pytorch_refuses():
    x = torch.empty(8, 16, 6, 6, device="meta")
    c = torch.empty(16, device="meta")
    func = aten.native_batch_norm.default
    assert batch_norm_kernel("native_batch_norm", func, (x, c, c, c, c, True, 0.1, 1e-5), {}) \
        is not NotImplemented
    for args in [(x.permute(0, 2, 3, 1), c, c, c, c, True, 0.1, 1e-5),  # odd layout
                 (x[::2], c, c, c, c, True, 0.1, 1e-5),  # not dense
                 (x, torch.empty(8, device="meta"), c, c, c, True, 0.1, 1e-5),  # wrong size
                 (x, c, c, None, None, False, 0.1, 1e-5),  # eval without running statistics
                 (x[:1, :, :1, :1], c, c, c, c, True, 0.1, 1e-5),  # one value per channel
                 (x.to(torch.int64), None, None, None, None, True, 0.1, 1e-5)]:
        assert batch_norm_kernel("native_batch_norm", func, args, {}) is NotImplemented


def backward_calls():
    func = aten.native_batch_norm_backward.default
    for shape, dtype in itertools.product(SHAPES, DTYPES):
        channels = shape[1]
        stats = torch.float32 if dtype == torch.bfloat16 else dtype
        for (layout, x), pdtype, affine, training in itertools.product(
                layouts(shape, dtype, odd=False), parameter_dtypes(dtype), (True, False),
                (True, False)):
            def m(dt=pdtype):
                return torch.empty(channels, device="meta", dtype=dt)
            grads = [("as input", torch.empty_like(x))]
            if layout != "contiguous":  # declined: the result's layout follows both
                grads.append(("contiguous", torch.empty(shape, device="meta", dtype=dtype)))
            for (grad_layout, grad), mask in itertools.product(
                    grads, ([True, True, True], [True, False, False])):
                args = (grad, x, m() if affine else None, m(), m(), m(stats), m(stats),
                        training, 1e-5, mask)
                yield (f"{shape} {dtype} {layout} grad {grad_layout} params {pdtype} "
                       f"affine={affine} training={training} mask={mask}"), func, args


def test_batch_norm_backward_as_pytorch_to_the_stride_or_declined():
    taken, wrong = 0, []
    for label, func, args in backward_calls():
        fast = batch_norm_backward_kernel("native_batch_norm_backward", func, args, {})
        if fast is NotImplemented:
            continue
        taken += 1
        real = pytorchs(func, args)
        if isinstance(real, Exception) or described(fast) != described(real):
            wrong.append((label, described(fast), real if isinstance(real, Exception) else described(real)))
    assert wrong == []
    assert taken


def test_batch_norm_backward_declines_a_gradient_laid_out_unlike_its_input():
    x = torch.empty(8, 16, 1, 6, device="meta").contiguous(memory_format=torch.channels_last)
    c = torch.empty(16, device="meta")
    func = aten.native_batch_norm_backward.default
    for grad, taken in ((torch.empty_like(x), True), (torch.empty(8, 16, 1, 6, device="meta"), False)):
        args = (grad, x, c, c, c, c, c, True, 1e-5, [True, True, True])
        fast = batch_norm_backward_kernel("native_batch_norm_backward", func, args, {})
        assert (fast is not NotImplemented) == taken


# Real planned steps: batch norm in training and in eval, channels-last, bf16 and fp16
# autocast (half inputs, float32 statistics), frozen layers (no weight gradient asked for).
PLANS = [("resnet18", {}),
         ("vgg11_bn", {"inference": True, "channels_last": True}),
         ("vgg11_bn", {"channels_last": True, "dtype": "bf16"}),
         ("vgg11_bn", {"dtype": "fp16", "freeze": ["features.0", "features.1"]})]


@pytest.fixture
def checked(monkeypatch):
    """Every exact shortcut the planner takes, compared with PyTorch's result."""
    used, wrong = Counter(), []
    exact_meta_op = trace_memory.exact_meta_op

    def run(name, func, args, kwargs):
        fast = exact_meta_op(name, func, args, kwargs)
        if fast is not NotImplemented:
            used[name] += 1
            real = func(*args, **kwargs)
            if described(fast) != described(real):
                wrong.append((name, described(fast), described(real)))
        return fast

    monkeypatch.setattr(trace_memory, "exact_meta_op", run)
    return used, wrong


@pytest.mark.parametrize("name,options", PLANS, ids=[f"{n}-{'-'.join(o) or 'train'}" for n, o in PLANS])
def test_in_planned_steps_each_shortcut_is_pytorchs_and_the_plan_the_same(name, options, checked,
                                                                          monkeypatch):
    used, wrong = checked
    fast = plan_memory(name, batch=2, **options)
    assert wrong == []
    assert used["native_batch_norm"] > 0
    assert (used["native_batch_norm_backward"] > 0) == (not options.get("inference"))
    monkeypatch.setattr(trace_memory, "exact_meta_op", lambda *args: NotImplemented)
    assert plan_memory(name, batch=2, **options) == fast
