"""MobileNetV2: parameter counts (published and by arithmetic), width multiplier, shapes."""

from __future__ import annotations

import pytest
import torch

from cnnscope.zoo import get_model, model_info
from cnnscope.zoo.mobilenet import MOBILENET_V2_SETTINGS, InvertedResidual

# torchvision MobileNet_V2_Weights.IMAGENET1K_V1.meta["num_params"].
TORCHVISION_PARAMS = 3_504_872


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(**kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        return get_model("mobilenet_v2", **kwargs)


def round_to_8(v: float) -> int:
    """Nearest multiple of 8 (ties up), at least 8, and not more than 10% below v."""
    r = max(8, int((v + 4) // 8) * 8)
    return r + 8 if r < 0.9 * v else r


def mobilenet_v2_params(width_mult: float = 1.0, num_classes: int = 1000) -> int:
    """Independent count from the paper's Table 2 (t, c, n, s) rows.

    Every conv has no bias and is followed by BN (weight + bias per channel).
    """
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    cin = round_to_8(32 * width_mult)
    total = 3 * cin * 3 * 3 + 2 * cin  # conv 3x3/2
    for t, c, n, _s in table:
        cout = round_to_8(c * width_mult)
        for _ in range(n):
            hidden = cin * t
            if t != 1:
                total += cin * hidden + 2 * hidden  # 1x1 expansion
            total += hidden * 3 * 3 + 2 * hidden  # 3x3 depthwise
            total += hidden * cout + 2 * cout  # 1x1 linear projection
            cin = cout
    last = round_to_8(1280 * max(1.0, width_mult))
    total += cin * last + 2 * last  # 1x1 conv to 1280
    return total + last * num_classes + num_classes


def test_settings_are_paper_table_2():
    assert [tuple(row) for row in MOBILENET_V2_SETTINGS] == [
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    ]
    row = MOBILENET_V2_SETTINGS[1]
    assert (row.t, row.c, row.n, row.s) == (6, 24, 2, 2)  # named fields for the spec table


def test_arithmetic_matches_torchvision_and_keras():
    assert mobilenet_v2_params() == TORCHVISION_PARAMS
    # Keras MobileNetV2 (alpha 1.0) publishes 3,538,984 total, 3,504,872 trainable; the
    # difference is 2 BN moving statistics per BN channel (buffers in PyTorch).
    bn_channels = 32 + 32 + 16  # first conv; block 1 (t=1): depthwise 32, projection 16
    cin = 16
    for t, c, n, _ in MOBILENET_V2_SETTINGS[1:]:
        bn_channels += n * c + 2 * (cin * t) + 2 * (n - 1) * (c * t)
        cin = c
    bn_channels += 1280
    assert 3_504_872 + 2 * bn_channels == 3_538_984


def test_default_param_count_and_reference():
    assert n_params(build()) == TORCHVISION_PARAMS
    assert model_info("mobilenet_v2").reference_params == TORCHVISION_PARAMS


@pytest.mark.parametrize("width_mult", [0.5, 0.75, 1.4])
def test_width_mult_param_count(width_mult):
    assert n_params(build(width_mult=width_mult)) == mobilenet_v2_params(width_mult)


def test_width_mult_half_channels():
    # 32*0.5=16; 16*0.5=8; 24*0.5=12 rounds (ties up) to 16; 32*0.5=16; 64*0.5=32;
    # 96*0.5=48; 160*0.5=80; 320*0.5=160; the last conv stays at 1280.
    m = build(width_mult=0.5)
    blocks = [b for b in m.features if isinstance(b, InvertedResidual)]
    assert m.features[0][0].out_channels == 16
    assert sorted({b.out_channels for b in blocks}) == [8, 16, 32, 48, 80, 160]
    assert m.last_channel == 1280 and m.classifier[1].in_features == 1280


def test_block_structure():
    m = build()
    blocks = [b for b in m.features if isinstance(b, InvertedResidual)]
    assert len(blocks) == sum(row.n for row in MOBILENET_V2_SETTINGS) == 17
    # Shortcuts on every repeat within a row (stride 1, same width): n - 1 per row.
    assert sum(b.use_res_connect for b in blocks) == sum(row.n - 1 for row in MOBILENET_V2_SETTINGS)
    assert [b.stride for b in blocks if b.stride == 2] == [2] * 4


def test_output_shape_and_num_classes():
    info = model_info("mobilenet_v2")
    assert info.input_size == (3, 224, 224)
    m = build().eval()
    assert m(torch.empty(2, *info.input_size, device="meta")).shape == (2, 1000)
    m10 = build(num_classes=10)
    assert n_params(m10) == mobilenet_v2_params(num_classes=10)
    assert m10.classifier[1].out_features == 10
    assert build().classifier[0].p == pytest.approx(0.2)
