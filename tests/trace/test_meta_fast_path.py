"""The meta fast path must give exactly the shapes PyTorch's own meta kernels give."""

import pytest
import torch
import torch.nn.functional as F

from cnnscope.trace.meta import fast_meta_op
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
]


@pytest.mark.parametrize("func,args", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_fast_path_shapes_equal_pytorch_meta(func, args):
    fast = fast_meta_op(op_name(func), func, args, {})
    assert fast is not NotImplemented
    real = func(*args)
    fast_t = fast if isinstance(fast, tuple) else (fast,)
    real_t = real if isinstance(real, tuple) else (real,)
    assert [tuple(t.shape) for t in fast_t[:1]] == [tuple(t.shape) for t in real_t[:1]]
    assert fast_t[0].dtype == real_t[0].dtype


def test_mismatched_cat_falls_back_to_pytorch_error():
    func = torch.ops.aten.cat.default
    args = ([m(2, 3, 4, 4), m(2, 5, 5, 4)], 1)
    assert fast_meta_op("cat", func, args, {}) is NotImplemented
    with pytest.raises(RuntimeError):
        func(*args)


def test_conv_too_small_falls_back_to_pytorch_error():
    func = torch.ops.aten.convolution.default
    args = (m(1, 3, 4, 4), m(8, 3, 5, 5), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)
    assert fast_meta_op("convolution", func, args, {}) is NotImplemented
    with pytest.raises(RuntimeError):
        func(*args)


def test_broadcast_matches_torch():
    from cnnscope.trace.meta import _broadcast

    for a, b in [((2, 3, 4, 4), (1, 3, 1, 1)), ((4,), (2, 1)), ((), (3, 2)), ((5, 1), (1, 6))]:
        assert _broadcast(a, b) == tuple(torch.broadcast_shapes(a, b))
    assert _broadcast((2, 3), (4, 3)) is None


def test_non_meta_tensors_are_never_shortcut():
    x = torch.ones(2, 2)
    assert fast_meta_op("relu", torch.ops.aten.relu.default, (x,), {}) is NotImplemented
    assert F.relu(x).sum() == 4
