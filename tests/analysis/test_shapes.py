"""Output sizes: the formulas against torch, per-layer rows, smallest and valid inputs."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import cnnscope
from cnnscope.analysis.shapes import (
    conv_formula,
    conv_output_size,
    output_sizes,
    transposed_formula,
    transposed_output_size,
)
from cnnscope.api import shapes
from cnnscope.api.too_small import explain_too_small
from cnnscope.errors import InputTooSmallError
from cnnscope.models import resolve

# ---------------------------------------------------------------------- the formulas


def test_course_notes_worked_example():
    # Source 002, "first example": 32x32 input, 5x5 conv stride 1 no padding -> 28, then
    # a 2x2 max pool stride 2 -> 14; floor((n - f + 2p)/s + 1) (equation 1 of the notes).
    assert conv_output_size(32, 5) == (32 - 5 + 2 * 0) // 1 + 1 == 28
    assert conv_output_size(28, 2, 2) == (28 - 2) // 2 + 1 == 14
    # The notes' "same" example (63x63, f=3, s=1, p=2 -> 63) and "valid" one (f=3, p=0,
    # s=2 -> 30) do not follow their own equation 1: it gives 65 and 31, as PyTorch does
    # (p=1 is the padding that keeps 63).
    assert conv_output_size(63, 3, 1, 2) == (63 - 3 + 2 * 2) // 1 + 1 == 65
    assert conv_output_size(63, 3, 1, 1) == 63
    assert conv_output_size(63, 3, 2, 0) == (63 - 3) // 2 + 1 == 31
    # AlexNet's first layer (227 input, 11x11 stride 4): (227 - 11)/4 + 1 = 55
    assert conv_output_size(227, 11, 4) == 55


def test_conv_and_pool_sizes_match_torch():
    for n, k, s, p, d in itertools.product(range(1, 12), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2)):
        x = torch.empty(1, 1, n, device="meta")
        w = torch.empty(1, 1, k, device="meta")
        expected = F.conv1d(x, w, stride=s, padding=p, dilation=d).shape[-1] \
            if n + 2 * p >= d * (k - 1) + 1 else 0
        got = conv_output_size(n, k, s, p, d)
        assert max(got, 0) == expected, (n, k, s, p, d)


def test_ceil_mode_pools_match_torch():
    for n, k, s, p in itertools.product(range(2, 16), (2, 3, 5), (1, 2, 3), (0, 1, 2)):
        if p > k // 2 or n + 2 * p < k:
            continue
        x = torch.empty(1, 1, n, device="meta")
        for ceil_mode in (False, True):
            expected = F.max_pool1d(x, k, s, p, ceil_mode=ceil_mode).shape[-1]
            assert conv_output_size(n, k, s, p, 1, ceil_mode) == expected, (n, k, s, p, ceil_mode)


def test_ceil_mode_drops_a_window_that_starts_in_the_padding():
    # n=5, k=2, s=2, p=1: ceil((5 + 2 - 2)/2) + 1 = 4 windows, but the 4th would start at
    # (4-1)*2 = 6 >= n + p = 6, inside the right padding: PyTorch keeps 3.
    text, value = conv_formula(5, 2, 2, 1, ceil_mode=True)
    assert value == 3
    assert text == "ceil((5 + 2*1 - 1*(2-1) - 1)/2 + 1) - 1 (last window would start in the padding) = 3"


def test_transposed_sizes_match_torch():
    for n, k, s, p, d in itertools.product(range(1, 8), (1, 2, 3, 4), (1, 2, 3), (0, 1), (1, 2)):
        for op in range(max(s, d)):
            if op >= s and op >= d:
                continue
            x = torch.empty(1, 1, n, device="meta")
            w = torch.empty(1, 1, k, device="meta")
            expected = transposed_output_size(n, k, s, p, d, op)
            if expected < 1:
                continue
            got = F.conv_transpose1d(x, w, stride=s, padding=p, output_padding=op, dilation=d)
            assert got.shape[-1] == expected, (n, k, s, p, d, op)


def test_formula_text():
    assert conv_formula(224, 7, 2, 3) == ("floor((224 + 2*3 - 1*(7-1) - 1)/2 + 1) = 112", 112)
    assert transposed_formula(28, 2, 2) == ("(28 - 1)*2 - 2*0 + 1*(2-1) + 0 + 1 = 56", 56)


# ---------------------------------------------------------------------- per-layer rows


def test_vgg16_rows_show_the_formula_of_each_window_layer(zoo_report):
    result = output_sizes(zoo_report("vgg16"))
    rows = {r.name: r for r in result.rows}
    assert rows["features.0"].formula == "floor((224 + 2*1 - 1*(3-1) - 1)/1 + 1) = 224"
    assert rows["features.4"].formula == "floor((224 + 2*0 - 1*(2-1) - 1)/2 + 1) = 112"
    assert rows["features.30"].output_shape == (1, 512, 7, 7)
    assert rows["features.1"].formula == ""  # ReLU keeps the size
    assert rows["view"].output_shape == (1, 512 * 7 * 7)  # the flatten is shown
    assert all(r.consistent for r in result.rows)
    assert not result.notes


def test_unet_rows_show_transposed_formula_and_crop(zoo_report):
    result = output_sizes(zoo_report("unet"))
    rows = {r.name: r for r in result.rows}
    # bottom: 28x28 -> up-convolution 2x2 stride 2 -> 56
    assert rows["up4"].formula == "(28 - 1)*2 - 2*0 + 1*(2-1) + 0 + 1 = 56"
    assert rows["slice"].formula == "H: crop [4:60] of 64 = 56"
    assert rows["out_conv"].output_shape == (1, 2, 388, 388)
    assert all(r.consistent for r in result.rows)


def test_inception_v3_non_square_kernel_rows_show_both_axes(zoo_report):
    rows = {r.name: r for r in output_sizes(zoo_report("inception_v3")).rows}
    text = rows["Mixed_6b.branch7x7_2.conv"].formula
    assert text == ("H: floor((17 + 2*0 - 1*(1-1) - 1)/1 + 1) = 17; "
                    "W: floor((17 + 2*3 - 1*(7-1) - 1)/1 + 1) = 17")


# ---------------------------------------------------------------------- input limits


def test_too_small_names_the_first_failing_layer_and_why():
    # VGG-16 at 16x16: the four 2x2 pools give 8, 4, 2, 1; pool5 (features.30) gets a 1x1
    # map and floor((1 + 0 - 1 - 1)/2 + 1) = 0.
    with pytest.raises(InputTooSmallError) as info:
        cnnscope.analyze("vgg16", (3, 16, 16))
    err = explain_too_small(resolve("vgg16"), (3, 16, 16), info.value)
    assert isinstance(err, InputTooSmallError)
    assert err.layer == "features.30"
    assert "receives a 1x1 map" in err.message
    assert "floor((1 + 2*0 - 1*(2-1) - 1)/2 + 1) = 0" in err.message
    assert err.hint == info.value.hint  # the smallest size that works is kept


def test_smallest_input_of_vgg16_and_inception_v3():
    from cnnscope.api import minimum_input

    # VGG: five 2x2/2 pools need 2**5 = 32 pixels.
    side, reason = minimum_input(resolve("vgg16"))
    assert side == (3, 2 ** 5, 2 ** 5)
    assert "features.30" in reason
    # Inception-v3: torchvision's Inception_V3_Weights meta gives min_size (75, 75).
    side, _ = minimum_input(resolve("inception_v3"))
    assert side == (3, 75, 75)


def _unet_valid(size: int) -> bool:
    """The paper's U-Net: 4 levels of two unpadded 3x3 convs (-4) and a 2x2 pool (needs an
    even map), the bottom's two convs, then 4 levels of x2 up-convolution and two convs."""
    s = size
    for _ in range(4):
        s -= 4
        if s < 1 or s % 2:
            return False
        s //= 2
    s -= 4
    if s < 1:
        return False
    for _ in range(4):
        s = 2 * s - 4
        if s < 1:
            return False
    return True


def test_unet_valid_sizes_near_a_request():
    # Solving the recurrence: valid sizes are 16*m + 124 for m >= 4 (188, 204, ..., 572).
    assert [s for s in range(1, 700) if _unet_valid(s)] == list(range(188, 700, 16))
    sizes, rule = shapes.valid_sizes_near(resolve("unet"), 570)
    assert sizes == (556, 572) and "valid_unet_sizes" in rule
    sizes, _ = shapes.valid_sizes_near(resolve("unet"), 572)
    assert sizes == (572,)


def test_valid_sizes_near_for_other_models_are_sizes_that_run():
    sizes, rule = shapes.valid_sizes_near(resolve("vgg16"), 30)
    assert sizes == (32,) and "runs" in rule
