"""The meta fast path must give exactly the shapes PyTorch's own meta kernels give."""

import pytest
import torch
import torch.nn.functional as F

from cnnscope.ops.registry import fast_meta_op
from cnnscope.trace.tracer import op_name


def m(*shape):
    return torch.empty(*shape, device="meta")


CASES = [
    (torch.ops.aten.native_batch_norm.default, (m(2, 8, 5, 5), m(8), m(8), m(8), m(8), False, 0.1, 1e-5)),
    (torch.ops.aten.native_batch_norm.default, (m(2, 8, 5, 5), m(8), m(8), m(8), m(8), True, 0.1, 1e-5)),
    (torch.ops.aten.relu.default, (m(2, 3, 4, 4),)),
    (torch.ops.aten.hardtanh.default, (m(2, 3, 4, 4), 0.0, 6.0)),
    (torch.ops.aten.add.Tensor, (m(2, 3, 4, 4), m(1, 3, 1, 1))),
    (torch.ops.aten.mul.Tensor, (m(2, 3, 4, 4), m(2, 3, 1, 1))),
    (torch.ops.aten.mul.Tensor, (m(2, 3, 4, 4), 0.5)),
    (torch.ops.aten.pow.Tensor_Scalar, (m(2, 3), 2)),
    (torch.ops.aten.addmm.default, (m(10), m(4, 5), m(5, 10))),
    (torch.ops.aten.mean.dim, (m(2, 8, 7, 7), [-1, -2], True)),
    (torch.ops.aten.mean.dim, (m(2, 8, 7, 7), [2, 3])),
    (torch.ops.aten.cat.default, ([m(2, 3, 4, 4), m(2, 5, 4, 4)], 1)),
    (torch.ops.aten.cat.default, ([m(2, 3, 4, 4), m(2, 3, 4, 4)], -1)),
    (torch.ops.aten.convolution.default,
     (m(2, 3, 224, 224), m(64, 3, 7, 7), None, [2, 2], [3, 3], [1, 1], False, [0, 0], 1)),
    (torch.ops.aten.max_pool2d_with_indices.default, (m(1, 64, 112, 112), [3, 3], [2, 2], [1, 1])),
    (torch.ops.aten.max_pool2d_with_indices.default, (m(1, 64, 112, 112), [3, 3], [2, 2], [0, 0], [1, 1], True)),
    (torch.ops.aten.max_pool2d_with_indices.default, (m(1, 8, 13, 13), [3, 3], [2, 2], [1, 1], [1, 1], True)),
    (torch.ops.aten.max_pool2d_with_indices.default, (m(1, 8, 14, 15), [3, 2], [], [1, 0], [2, 1], False)),
    (torch.ops.aten.avg_pool2d.default, (m(1, 256, 56, 56), [2, 2], [2, 2])),
    (torch.ops.aten.avg_pool2d.default, (m(1, 8, 9, 9), [3, 3], [2, 2], [1, 1], True)),
    (torch.ops.aten.avg_pool2d.default, (m(8, 7, 7), [7, 7], [1, 1])),
    (torch.ops.aten.convolution.default,
     (m(1, 32, 15, 17), m(64, 8, 3, 5), m(64), [2, 1], [0, 2], [2, 1], False, [0, 0], 4)),
    (torch.ops.aten.convolution.default,
     (m(1, 1024, 28, 28), m(1024, 512, 2, 2), m(512), [2, 2], [0, 0], [1, 1], True, [0, 0], 1)),
    (torch.ops.aten.convolution.default,
     (m(1, 16, 7, 7), m(16, 4, 3, 3), None, [2, 2], [1, 1], [1, 1], True, [1, 1], 2)),
    # Highway's carry gate 1 - T, and the ops behind LRN, HRNet, attention masks, CapsNet.
    (torch.ops.aten.rsub.Scalar, (m(2, 16, 8, 8), 1)),
    (torch.ops.aten.rsub.Tensor, (m(2, 16, 8, 8), m(16, 1, 1))),
    (torch.ops.aten.avg_pool3d.default, (m(1, 1, 100, 55, 55), [5, 1, 1], [1, 1, 1])),
    (torch.ops.aten.avg_pool3d.default, (m(2, 4, 9, 9, 9), [3, 3, 3], [2, 2, 2], [1, 1, 1], True)),
    (torch.ops.aten.max_pool3d_with_indices.default, (m(1, 4, 8, 9, 10), [2, 2, 2], [2, 2, 2])),
    (torch.ops.aten.constant_pad_nd.default, (m(1, 1, 96, 55, 55), [0, 0, 0, 0, 2, 2], 0.0)),
    (torch.ops.aten.constant_pad_nd.default, (m(1, 64, 136, 136), [-4, -4, -4, -4])),
    (torch.ops.aten.constant_pad_nd.default, (m(1, 3, 5, 5), [1, 2])),
    (torch.ops.aten.upsample_nearest2d.default, (m(1, 18, 28, 28), [56, 56])),
    (torch.ops.aten.upsample_bilinear2d.default, (m(1, 64, 14, 14), [28, 28], False)),
    (torch.ops.aten.upsample_bilinear2d.default, (m(1, 64, 14, 14), [29, 30], True, None, None)),
    (torch.ops.aten._upsample_nearest_exact2d.default, (m(2, 3, 7, 7), [21, 14])),
    (torch.ops.aten._adaptive_avg_pool2d.default, (m(1, 512, 13, 13), [7, 7])),
    (torch.ops.aten._adaptive_avg_pool2d.default, (m(512, 6, 5), [1, 1])),
    (torch.ops.aten._softmax.default, (m(2, 1152, 10, 1), 2, False)),
    (torch.ops.aten.sum.dim_IntList, (m(2, 1152, 10, 16), [1], True)),
    (torch.ops.aten.sum.dim_IntList, (m(2, 10, 16), [-1])),
    (torch.ops.aten.mm.default, (m(7, 5), m(5, 3))),
    (torch.ops.aten.bmm.default, (m(1152, 10, 8), m(1152, 8, 16))),
    (torch.ops.aten.zeros_like.default, (m(2, 1152, 10, 1),)),
    (torch.ops.aten.empty_like.default, (m(3, 4),)),
]


@pytest.mark.parametrize("func,args", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_fast_path_shapes_equal_pytorch_meta(func, args):
    fast = fast_meta_op(op_name(func), func, args, {})
    assert fast is not NotImplemented
    real = func(*args)
    fast_t = fast if isinstance(fast, tuple) else (fast,)
    real_t = real if isinstance(real, tuple) else (real,)
    n = 1 if "batch_norm" in str(func) else len(real_t)  # batch norm's saved statistics: not compared
    assert len(fast_t) == len(real_t)
    assert [tuple(t.shape) for t in fast_t[:n]] == [tuple(t.shape) for t in real_t[:n]]
    assert [t.dtype for t in fast_t[:n]] == [t.dtype for t in real_t[:n]]


def test_mismatched_cat_falls_back_to_pytorch_error():
    func = torch.ops.aten.cat.default
    args = ([m(2, 3, 4, 4), m(2, 5, 5, 4)], 1)
    assert fast_meta_op("cat", func, args, {}) is NotImplemented
    with pytest.raises(RuntimeError, match="Sizes of tensors must match except in dimension 1"):
        func(*args)


def test_conv_too_small_falls_back_to_pytorch_error():
    func = torch.ops.aten.convolution.default
    args = (m(1, 3, 4, 4), m(8, 3, 5, 5), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)
    assert fast_meta_op("convolution", func, args, {}) is NotImplemented
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
        func(*args)


def test_broadcast_matches_torch():
    from cnnscope.ops.meta_tensors import broadcast

    for a, b in [((2, 3, 4, 4), (1, 3, 1, 1)), ((4,), (2, 1)), ((), (3, 2)), ((5, 1), (1, 6))]:
        assert broadcast(a, b) == tuple(torch.broadcast_shapes(a, b))
    assert broadcast((2, 3), (4, 3)) is None


def test_non_meta_tensors_are_never_shortcut():
    x = torch.ones(2, 2)
    assert fast_meta_op("relu", torch.ops.aten.relu.default, (x,), {}) is NotImplemented
    assert F.relu(x).sum() == 4


@pytest.mark.parametrize("func,args", [
    (torch.ops.aten.constant_pad_nd.default, (m(1, 3, 4, 4), [-2, -2])),  # crops to nothing
    (torch.ops.aten.avg_pool3d.default, (m(1, 1, 3, 5, 5), [5, 1, 1], [1, 1, 1])),  # too small
    (torch.ops.aten.upsample_nearest2d.vec, (m(1, 3, 4, 4), None, [2.0, 2.0])),  # scale factors
    (torch.ops.aten._adaptive_avg_pool2d.default, (m(1, 3, 0, 4), [1, 1])),  # empty map
    (torch.ops.aten._softmax.default, (m(2, 3), 1, True)),  # half_to_float changes the dtype
    (torch.ops.aten.bmm.default, (m(2, 3, 4), m(3, 4, 5))),  # batch mismatch: PyTorch's error
])
def test_cases_the_fast_path_leaves_to_pytorch(func, args):
    assert fast_meta_op(op_name(func), func, args, {}) is NotImplemented


def test_tracing_never_imports_dynamo_or_sympy(import_checks):
    # A Python meta kernel reached by tracing imports torch._dynamo (1.5-2.5 s) or sympy
    # (0.5 s) on first use; the fast paths exist to avoid that. These models reach every op
    # that used to: rsub (Highway), LRN (AlexNet), sign_ at build (LeNet-5), bmm and
    # zeros_like (CapsNet), interpolation (HRNet, Residual Attention, U-Net). They are
    # analysed in a fresh interpreter (tests/conftest.py's IMPORT_CHECKS).
    assert import_checks["tracing_dynamo_sympy"] == []
