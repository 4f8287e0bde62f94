"""Every cost formula, with expected values written as the arithmetic that gives them."""

import pytest

from cnnscope.ops import registry
from cnnscope.ops.cost import TensorShape as T
from cnnscope.ops.registry import FORMULAS, lookup


def op_cost(name, args, outs):
    return registry.op_cost(lookup(name), args, outs)


def cost(name, args, outs):
    c = op_cost(name, args, outs)
    assert c is not None, name
    return c.macs, c.flops


def test_conv_counts_one_mac_per_weight_per_output_pixel():
    # ResNet conv1: 7x7, 3->64, stride 2, 224 -> 112; no bias.
    macs, flops = cost("convolution", (T((1, 3, 224, 224)), T((64, 3, 7, 7)), None, [2, 2], [3, 3],
                                       [1, 1], False, [0, 0], 1), [(1, 64, 112, 112)])
    assert macs == 112 * 112 * 64 * (3 * 7 * 7)
    assert flops == 2 * macs


def test_conv_bias_adds_one_flop_per_output_element():
    macs, flops = cost("convolution", (T((2, 16, 8, 8)), T((32, 16, 3, 3)), T((32,)), [1, 1], [1, 1],
                                       [1, 1], False, [0, 0], 1), [(2, 32, 8, 8)])
    assert macs == 2 * 32 * 8 * 8 * (16 * 3 * 3)
    assert flops == 2 * macs + 2 * 32 * 8 * 8


def test_grouped_and_depthwise_conv():
    # groups=4: each output sees C_in/groups = 8 channels (weight shape (64, 8, 3, 3)).
    macs, _ = cost("convolution", (T((1, 32, 14, 14)), T((64, 8, 3, 3)), None, [1, 1], [1, 1], [1, 1],
                                   False, [0, 0], 4), [(1, 64, 14, 14)])
    assert macs == 64 * 14 * 14 * (8 * 3 * 3)
    # depthwise 3x3 on 32 channels: 9 MACs per output element.
    macs, _ = cost("convolution", (T((1, 32, 14, 14)), T((32, 1, 3, 3)), None, [1, 1], [1, 1], [1, 1],
                                   False, [0, 0], 32), [(1, 32, 14, 14)])
    assert macs == 32 * 14 * 14 * 9


def test_transposed_conv_counts_from_the_input_side():
    # U-Net up-convolution: 2x2 stride 2, 1024 -> 512 channels, 28x28 -> 56x56.
    # Transposed weight layout is (C_in, C_out/groups, kh, kw).
    macs, flops = cost("convolution", (T((1, 1024, 28, 28)), T((1024, 512, 2, 2)), T((512,)), [2, 2],
                                       [0, 0], [1, 1], True, [0, 0], 1), [(1, 512, 56, 56)])
    assert macs == 1024 * 28 * 28 * (512 * 2 * 2)
    # With stride == kernel each output receives exactly one product: same as out * C_in.
    assert macs == 512 * 56 * 56 * 1024
    assert flops == 2 * macs + 512 * 56 * 56


def test_linear_as_addmm_excludes_bias_from_macs():
    macs, flops = cost("addmm", (T((1000,)), T((8, 2048)), T((2048, 1000))), [(8, 1000)])
    assert macs == 8 * 2048 * 1000
    assert flops == 2 * macs + 8 * 1000


def test_mm_bmm_baddbmm():
    assert cost("mm", (T((5, 7)), T((7, 3))), [(5, 3)]) == (5 * 7 * 3, 2 * 5 * 7 * 3)
    assert cost("bmm", (T((4, 5, 7)), T((4, 7, 3))), [(4, 5, 3)]) == (4 * 5 * 7 * 3, 2 * 4 * 5 * 7 * 3)
    macs, flops = cost("baddbmm", (T((4, 5, 3)), T((4, 5, 7)), T((4, 7, 3))), [(4, 5, 3)])
    assert (macs, flops) == (4 * 5 * 7 * 3, 2 * 4 * 5 * 7 * 3 + 4 * 5 * 3)


@pytest.mark.parametrize("op", ["add", "mul", "relu", "sigmoid", "hardtanh", "div", "tanh"])
def test_elementwise_one_flop_per_output_element(op):
    assert cost(op, (T((2, 64, 56, 56)), T((2, 64, 56, 56))), [(2, 64, 56, 56)]) == (0, 2 * 64 * 56 * 56)


def test_batch_norm_inference_and_training():
    out = [(1, 64, 56, 56)]
    assert cost("_native_batch_norm_legit_no_training", (T(out[0]),), out) == (0, 2 * 64 * 56 * 56)
    assert cost("native_batch_norm", (T(out[0]),), out) == (0, 4 * 64 * 56 * 56)


def test_pooling_one_flop_per_window_element():
    # 3x3/2 max pool, 112 -> 56 on 64 channels.
    assert cost("max_pool2d_with_indices", (T((1, 64, 112, 112)), [3, 3], [2, 2], [1, 1]),
                [(1, 64, 56, 56)]) == (0, 64 * 56 * 56 * 3 * 3)
    assert cost("avg_pool2d", (T((1, 256, 56, 56)), [2, 2], [2, 2]), [(1, 256, 28, 28)]) == (0, 256 * 28 * 28 * 4)


def test_adaptive_pool_and_mean_visit_each_input_once():
    assert cost("_adaptive_avg_pool2d", (T((1, 2048, 7, 7)), [1, 1]), [(1, 2048, 1, 1)]) == (0, 2048 * 7 * 7)
    assert cost("mean", (T((1, 2048, 7, 7)), [-1, -2], True), [(1, 2048, 1, 1)]) == (0, 2048 * 7 * 7)


def test_softmax_norm_interpolation():
    assert cost("_softmax", (T((1, 1152, 10)), -1, False), [(1, 1152, 10)]) == (0, 3 * 1152 * 10)
    assert cost("linalg_vector_norm", (T((1, 10, 16)), 2, [-1]), [(1, 10)]) == (0, 2 * 10 * 16 + 10)
    assert cost("upsample_nearest2d", (T((1, 18, 28, 28)),), [(1, 18, 56, 56)]) == (0, 0)
    assert cost("upsample_bilinear2d", (T((1, 18, 28, 28)),), [(1, 18, 56, 56)]) == (0, 7 * 18 * 56 * 56)


def test_free_and_shape_ops_cost_nothing_and_unknown_ops_are_none():
    assert cost("cat", ([T((1, 64, 28, 28)), T((1, 32, 28, 28))], 1), [(1, 96, 28, 28)]) == (0, 0)
    assert cost("view", (T((1, 2048, 1, 1)), [1, 2048]), [(1, 2048)]) == (0, 0)
    assert op_cost("_fft_r2c", (T((1, 8, 8)),), [(1, 8, 5)]) is None


def test_a_name_in_two_entries_is_refused():
    from types import SimpleNamespace

    from cnnscope.ops.entry import entry

    family = SimpleNamespace(ENTRIES=(entry("my_conv", cost=lambda a, o: None),
                                      entry(("my_pool", "my_conv"), cost=lambda a, o: None)))
    with pytest.raises(ValueError, match="'my_conv' is in two entries"):
        registry.build_index([family])
    assert "convolution" in FORMULAS
