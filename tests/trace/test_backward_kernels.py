"""The backward counter's shape kernels give what PyTorch's own meta kernels give.

On meta, ``cnnscope.trace.backward`` takes an op's result from the registry's shape kernel
where the op has one (as the forward trace does) instead of PyTorch's Python
decompositions. Every such result is checked here against PyTorch's, op by op, in real
backward passes of zoo models that reach every kernel: same shapes, same dtypes, the same
outputs left out (None). And the counted backward work is the same either way.
"""

from collections import Counter

import pytest
import torch

import cnnscope
from cnnscope.trace import backward

# One model per kernel at least: tanh (LeNet-5), ReLU and batch norm (ResNet-18), ReLU6
# (MobileNetV2), sigmoid (SE-ResNet-50's gates, Highway's transform gate), softmax (CapsNet's
# routing), and the adds, muls and divs between them.
MODELS = ("lenet5", "resnet18", "mobilenet_v2", "se_resnet50", "highway", "capsnet")
KERNELS = {"tanh_backward", "threshold_backward", "native_batch_norm_backward",
           "hardtanh_backward", "sigmoid_backward", "_softmax_backward_data", "add", "mul",
           "div"}


def described(out):
    if out is None:
        return None
    if isinstance(out, torch.Tensor):
        return tuple(out.shape), out.dtype, out.device.type
    return [described(o) for o in out]


@pytest.fixture
def checked(monkeypatch):
    """Every shortcut result compared with PyTorch's; returns (ops shortcut, mismatches)."""
    used, wrong = Counter(), []
    meta_shortcut = backward.meta_shortcut

    def run(spec, name, func, args, kwargs):
        fast = meta_shortcut(spec, name, func, args, kwargs)
        if fast is not NotImplemented:
            used[name] += 1
            real = func(*args, **kwargs)
            if described(fast) != described(real):
                wrong.append((name, described(fast), described(real)))
        return fast

    monkeypatch.setattr(backward, "meta_shortcut", run)
    return used, wrong


def test_each_shortcut_result_is_pytorchs(checked):
    used, wrong = checked
    for name in MODELS:
        cnnscope.analyze(name, train=True)
    assert wrong == []
    assert KERNELS <= set(used), KERNELS - set(used)  # every kernel was reached


@pytest.mark.parametrize("name", ["mobilenet_v2", "capsnet"])
def test_the_backward_count_is_the_same_without_the_shortcuts(name, monkeypatch):
    fast = cnnscope.analyze(name, train=True)
    monkeypatch.setattr(backward, "meta_shortcut", lambda *args: NotImplemented)
    real = cnnscope.analyze(name, train=True)
    assert (fast.totals.backward_macs, fast.totals.backward_flops) == \
        (real.totals.backward_macs, real.totals.backward_flops)
    assert fast.unsupported == real.unsupported
    assert [(r.name, r.backward_macs, r.backward_flops) for r in fast.layers] == \
        [(r.name, r.backward_macs, r.backward_flops) for r in real.layers]


@pytest.mark.parametrize("x_dtype,w_dtype", [(torch.float32, torch.float32),
                                             (torch.bfloat16, torch.float32),
                                             (torch.bfloat16, torch.bfloat16)])
@pytest.mark.parametrize("mask", [[True, True, True], [False, True, True], [True, False, False]])
@pytest.mark.parametrize("with_weight", [True, False])
def test_batch_norm_backward_as_pytorch_in_mixed_precision_and_every_mask(
        x_dtype, w_dtype, mask, with_weight):
    from cnnscope.ops.norm import batch_norm_backward_kernel

    def m(*shape, dtype=torch.float32):
        return torch.empty(*shape, device="meta", dtype=dtype)

    func = torch.ops.aten.native_batch_norm_backward.default
    args = (m(2, 3, 4, 4, dtype=x_dtype), m(2, 3, 4, 4, dtype=x_dtype),
            m(3, dtype=w_dtype) if with_weight else None, m(3, dtype=w_dtype), m(3, dtype=w_dtype),
            m(3), m(3), True, 1e-5, mask)
    fast = batch_norm_backward_kernel("native_batch_norm_backward", func, args, {})
    assert described(fast) == described(func(*args))


def test_a_backward_trace_imports_no_dynamo(import_checks):
    # PyTorch's meta kernels for these backward ops import torch._dynamo (0.8 s) on first
    # use; `cnnscope params resnet18 --train` in a fresh interpreter must not.
    assert import_checks["train_dynamo"] == []
