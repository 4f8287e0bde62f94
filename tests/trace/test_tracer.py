"""The tracer on small hand-built networks whose every number is arithmetic."""

import pytest
import torch
from torch import nn

from cnnscope.errors import DeviceUnavailableError, InputTooSmallError
from cnnscope.trace.tracer import MODEL_INPUT, trace_module


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out += x  # in-place residual, as torchvision writes it
        return self.relu(out)  # the same ReLU module called a second time


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 7, stride=2, padding=3)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.block = Block(8)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)
        self.proj = nn.Parameter(torch.ones(10, 10))  # used by a matmul in forward()
        self.unused = nn.Linear(10, 10)  # never called

    def forward(self, x):
        x = self.block(self.pool(self.conv(x)))
        x = torch.flatten(self.gap(x), 1)
        return self.fc(x) @ self.proj.t()


def trace(model_cls=Net, size=(3, 32, 32), batch=2, **kw):
    with torch.device("meta"):
        model = model_cls()
    return trace_module(model, size, batch, **kw)


def by_name(report):
    return {r.name: r for r in report.layers}


def test_records_costs_and_shapes():
    rep = trace()
    r = by_name(rep)
    assert r["conv"].output_shape == (2, 8, 16, 16)
    assert r["conv"].macs == 2 * 8 * 16 * 16 * (3 * 7 * 7)
    assert r["conv"].flops == 2 * r["conv"].macs + 2 * 8 * 16 * 16  # bias adds
    assert r["conv"].params == 8 * 3 * 7 * 7 + 8
    assert (r["conv"].kernel_size, r["conv"].stride, r["conv"].padding) == ((7, 7), (2, 2), (3, 3))
    assert r["pool"].output_shape == (2, 8, 8, 8)
    assert r["pool"].flops == 2 * 8 * 8 * 8 * 9
    assert r["block.bn1"].flops == 2 * (2 * 8 * 8 * 8)
    assert r["block.add"].kind == "function" and r["block.add"].flops == 2 * 8 * 8 * 8
    assert r["fc"].macs == 2 * 8 * 10
    assert r["mm"].macs == 2 * 10 * 10 and r["mm"].params == 10 * 10
    assert rep.output_shapes == ((2, 10),)


def test_totals_are_sums_and_params_counted_once():
    rep = trace()
    assert rep.totals.macs == sum(r.macs for r in rep.layers)
    assert rep.totals.flops == sum(r.flops for r in rep.layers)
    expected_params = (8 * 3 * 49 + 8) + (8 * 8 * 9) + (2 * 8) + (8 * 10 + 10) + 100 + (10 * 10 + 10)
    assert rep.totals.params == expected_params
    # The uncalled Linear is in the total but no layer consumed it.
    assert rep.unused_params == 10 * 10 + 10
    assert sum(r.params for r in rep.layers) + rep.unused_params == rep.totals.params
    assert rep.unsupported == ()


def test_dataflow_links_follow_inplace_ops_and_repeat_calls():
    r = by_name(trace())
    assert r["conv"].inputs == (MODEL_INPUT,)
    # out += x: the add reads the first ReLU's output and the pool's output (the identity).
    assert set(r["block.add"].inputs) == {r["block.relu"].index, r["pool"].index}
    second = r["block.relu#2"]
    assert second.call_index == 1 and second.params == 0
    assert second.inputs == (r["block.add"].index,)


def test_batch_scales_costs_not_params():
    one, four = trace(batch=1), trace(batch=4)
    assert four.totals.macs == 4 * one.totals.macs
    assert four.totals.params == one.totals.params


def test_cpu_trace_counts_the_same_as_meta():
    meta = trace()
    model = Net()
    cpu = trace_module(model, (3, 32, 32), 2, device="cpu")
    assert (cpu.totals.macs, cpu.totals.flops, cpu.totals.params) == (
        meta.totals.macs, meta.totals.flops, meta.totals.params)


def test_unsupported_op_is_reported_not_zeroed():
    class Spectral(nn.Module):
        def forward(self, x):
            return torch.fft.rfft2(x).abs()

    rep = trace(Spectral, size=(1, 8, 8), batch=1)
    assert rep.unsupported, "an op without a formula must be listed"
    assert any(r.unsupported for r in rep.layers)


def test_shared_module_costs_per_call():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)

        def forward(self, x):
            return self.conv(self.conv(x))

    rep = trace(Twice, size=(4, 10, 10), batch=1)
    calls = [r for r in rep.layers if r.type == "Conv2d"]
    assert [c.params for c in calls] == [4 * 4 * 9, 0]
    assert rep.totals.macs == 2 * (4 * 10 * 10 * 4 * 9)


def test_input_too_small_names_the_layer():
    class Valid(nn.Module):  # unpadded convolutions shrink 9 -> 5 -> 1 -> fail
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 2, 5)
            self.c2 = nn.Conv2d(2, 2, 5)
            self.c3 = nn.Conv2d(2, 2, 5)

        def forward(self, x):
            return self.c3(self.c2(self.c1(x)))

    with pytest.raises(InputTooSmallError) as exc:
        trace(Valid, size=(1, 9, 9), batch=1)
    assert exc.value.layer == "c3"
    trace(Valid, size=(1, 13, 13), batch=1)  # 13 -> 9 -> 5 -> 1 fits


def test_cuda_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
        trace(device="cuda")


def test_train_mode_counts_batch_statistics():
    eval_bn = by_name(trace())["block.bn1"].flops
    train_bn = by_name(trace(train=True))["block.bn1"].flops
    # +1 in training: the num_batches_tracked counter is incremented once.
    assert (eval_bn, train_bn) == (2 * 2 * 8 * 8 * 8, 4 * 2 * 8 * 8 * 8 + 1)
