"""Inception-v3, Inception-v4, Inception-ResNet-v2: parameter counts, shapes, options.

Expected counts are published figures or arithmetic from the layer definitions,
never the model's own output. Everything builds on the meta device (no weights).
"""

from __future__ import annotations

import pytest
import torch

from cnnscope.zoo import get_model, model_info
from cnnscope.zoo.inception import InceptionOutputs
from cnnscope.zoo.inception_v4 import (
    INCEPTION_RESNET_V2_REPEATS,
    INCEPTION_RESNET_V2_SCALES,
)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(name: str, **kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        return get_model(name, **kwargs)


def cb(cin: int, cout: int, kh: int, kw: int | None = None) -> int:
    """BasicConv2d: conv without bias + BN weight and bias."""
    return cin * cout * kh * (kh if kw is None else kw) + 2 * cout


def linear(cin: int, cout: int) -> int:
    return cin * cout + cout


# ---------------------------------------------------------------------------- v3

# torchvision Inception_V3_Weights.IMAGENET1K_V1.meta["num_params"], built with the aux head.
TORCHVISION_V3_WITH_AUX = 27_161_264
# InceptionAux: conv0 1x1 768->128, conv1 5x5 128->768, fc 768->1000.
V3_AUX_PARAMS = cb(768, 128, 1) + cb(128, 768, 5) + linear(768, 1000)
V3_NO_AUX = 23_834_568


def test_v3_without_aux_is_torchvision_count_minus_aux_head():
    assert TORCHVISION_V3_WITH_AUX - V3_AUX_PARAMS == V3_NO_AUX
    assert n_params(build("inception_v3")) == V3_NO_AUX


def test_v3_with_aux_matches_torchvision_num_params():
    assert n_params(build("inception_v3", aux_logits=True)) == TORCHVISION_V3_WITH_AUX


def test_v3_agrees_with_keras_count():
    # Keras InceptionV3 (no aux head) publishes 23,851,784 total. Its BN layers have no
    # scale but keep beta + moving mean + moving variance (3 numbers per channel) where
    # PyTorch has weight + bias as parameters (2): Keras total = ours + one per BN channel.
    # BN channels = the output widths of every BasicConv2d:
    stem = 32 + 32 + 64 + 80 + 192
    mixed_5 = sum(64 + 48 + 64 + 64 + 96 + 96 + pf for pf in (32, 64, 64))
    mixed_6a = 384 + 64 + 96 + 96
    mixed_6 = sum(192 + (c7 + c7 + 192) + (4 * c7 + 192) + 192 for c7 in (128, 160, 160, 192))
    mixed_7a = 192 + 320 + 4 * 192
    mixed_7 = 2 * (320 + 384 + 384 + 384 + 448 + 384 + 384 + 384 + 192)
    bn_channels = stem + mixed_5 + mixed_6a + mixed_6 + mixed_7a + mixed_7
    # Keras' non-trainable 34,432 is 2 moving statistics per BN channel.
    assert 2 * bn_channels == 34_432
    assert 23_851_784 - bn_channels == V3_NO_AUX


def test_v3_registry_metadata():
    info = model_info("inception_v3")
    assert info.input_size == (3, 299, 299)
    # The published torchvision figure includes the aux head, which the default omits.
    assert info.reference_params is None


def test_v3_aux_head_runs_only_in_training():
    m = build("inception_v3", aux_logits=True)
    x = torch.empty(2, 3, 299, 299, device="meta")
    m.eval()
    y = m(x)
    assert isinstance(y, torch.Tensor) and y.shape == (2, 1000)
    m.train()
    out = m(x)
    assert isinstance(out, InceptionOutputs)
    assert out.logits.shape == (2, 1000) and out.aux_logits.shape == (2, 1000)


def test_v3_default_has_no_aux_head():
    m = build("inception_v3")
    assert m.AuxLogits is None and not m.aux_logits


def test_v3_num_classes():
    m = build("inception_v3", num_classes=10, aux_logits=True)
    # Both classifiers (fc 2048 -> n, AuxLogits.fc 768 -> n) shrink from 1000 to 10 outputs.
    expected = (TORCHVISION_V3_WITH_AUX - linear(2048, 1000) + linear(2048, 10)
                - linear(768, 1000) + linear(768, 10))
    assert n_params(m) == expected
    assert m.fc.out_features == 10 and m.AuxLogits.fc.out_features == 10


def test_v3_keeps_torchvision_names():
    names = dict(build("inception_v3", aux_logits=True).named_parameters())
    for key in ("Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.weight", "Mixed_5b.branch_pool.conv.weight",
                "Mixed_6e.branch7x7dbl_5.conv.weight", "Mixed_7c.branch3x3dbl_3b.bn.bias",
                "AuxLogits.conv1.conv.weight", "AuxLogits.fc.weight", "fc.weight", "fc.bias"):
        assert key in names, key


# ---------------------------------------------------------------------------- v4


def inception_v4_params(num_classes: int = 1000) -> int:
    """Inception-v4 from the paper's Figures 3-9 (timm's layer settings)."""
    stem = cb(3, 32, 3) + cb(32, 32, 3) + cb(32, 64, 3)
    mixed_3a = cb(64, 96, 3)  # || max pool: 64 + 96 = 160
    mixed_4a = (cb(160, 64, 1) + cb(64, 96, 3)
                + cb(160, 64, 1) + cb(64, 64, 1, 7) + cb(64, 64, 7, 1) + cb(64, 96, 3))  # 192
    mixed_5a = cb(192, 192, 3)  # || max pool: 384
    inception_a = (cb(384, 96, 1)
                   + cb(384, 64, 1) + cb(64, 96, 3)
                   + cb(384, 64, 1) + cb(64, 96, 3) + cb(96, 96, 3)
                   + cb(384, 96, 1))
    k, l, m, n = 192, 224, 256, 384  # paper Table 1, Inception-v4
    reduction_a = cb(384, n, 3) + cb(384, k, 1) + cb(k, l, 3) + cb(l, m, 3)
    inception_b = (cb(1024, 384, 1)
                   + cb(1024, 192, 1) + cb(192, 224, 1, 7) + cb(224, 256, 7, 1)
                   + cb(1024, 192, 1) + cb(192, 192, 7, 1) + cb(192, 224, 1, 7)
                   + cb(224, 224, 7, 1) + cb(224, 256, 1, 7)
                   + cb(1024, 128, 1))
    reduction_b = (cb(1024, 192, 1) + cb(192, 192, 3)
                   + cb(1024, 256, 1) + cb(256, 256, 1, 7) + cb(256, 320, 7, 1) + cb(320, 320, 3))
    inception_c = (cb(1536, 256, 1)
                   + cb(1536, 384, 1) + cb(384, 256, 1, 3) + cb(384, 256, 3, 1)
                   + cb(1536, 384, 1) + cb(384, 448, 3, 1) + cb(448, 512, 1, 3)
                   + cb(512, 256, 1, 3) + cb(512, 256, 3, 1)
                   + cb(1536, 256, 1))
    return (stem + mixed_3a + mixed_4a + mixed_5a + 4 * inception_a + reduction_a
            + 7 * inception_b + reduction_b + 3 * inception_c + linear(1536, num_classes))


def test_v4_channel_bookkeeping():
    # Concatenated widths that the arithmetic above relies on.
    assert 64 + 96 == 160 and 96 + 96 == 192 and 192 + 192 == 384
    assert 96 * 4 == 384  # Inception-A
    assert 384 + 256 + 384 == 1024  # Reduction-A: n + m + pooled input
    assert 384 + 256 + 256 + 128 == 1024  # Inception-B
    assert 192 + 320 + 1024 == 1536  # Reduction-B
    assert 256 + 2 * 256 + 2 * 256 + 256 == 1536  # Inception-C


def test_v4_param_count():
    expected = inception_v4_params()
    assert n_params(build("inception_v4")) == expected
    # timm documents only a rounded figure: "Parameters: 42680000" (docs/models/inception-v4.md).
    assert round(expected / 1e6, 2) == 42.68


def test_v4_num_classes():
    m = build("inception_v4", num_classes=7)
    assert n_params(m) == inception_v4_params(7)
    assert m.last_linear.out_features == 7


def test_v4_timm_names():
    names = dict(build("inception_v4").named_parameters())
    for key in ("features.0.conv.weight", "features.3.conv.bn.weight", "features.21.branch2_3b.conv.weight",
                "last_linear.weight"):
        assert key in names, key
    assert len(build("inception_v4").features) == 22  # 3 convs + 3 mixed + 4 + 1 + 7 + 1 + 3


# ------------------------------------------------------------- Inception-ResNet-v2


def inception_resnet_v2_params(num_classes: int = 1000) -> int:
    """Inception-ResNet-v2 as released (TF-slim / timm), block by block."""
    stem = cb(3, 32, 3) + cb(32, 32, 3) + cb(32, 64, 3) + cb(64, 80, 1) + cb(80, 192, 3)
    mixed_5b = (cb(192, 96, 1) + cb(192, 48, 1) + cb(48, 64, 5)
                + cb(192, 64, 1) + cb(64, 96, 3) + cb(96, 96, 3) + cb(192, 64, 1))  # 320
    # Residual blocks end in a linear 1x1 conv with bias (no BN) back to the input width.
    block35 = (cb(320, 32, 1) + cb(320, 32, 1) + cb(32, 32, 3)
               + cb(320, 32, 1) + cb(32, 48, 3) + cb(48, 64, 3) + linear(32 + 32 + 64, 320))
    mixed_6a = cb(320, 384, 3) + cb(320, 256, 1) + cb(256, 256, 3) + cb(256, 384, 3)  # 1088
    block17 = (cb(1088, 192, 1) + cb(1088, 128, 1) + cb(128, 160, 1, 7) + cb(160, 192, 7, 1)
               + linear(192 + 192, 1088))
    mixed_7a = (cb(1088, 256, 1) + cb(256, 384, 3) + cb(1088, 256, 1) + cb(256, 288, 3)
                + cb(1088, 256, 1) + cb(256, 288, 3) + cb(288, 320, 3))  # 2080
    block8 = (cb(2080, 192, 1) + cb(2080, 192, 1) + cb(192, 224, 1, 3) + cb(224, 256, 3, 1)
              + linear(192 + 256, 2080))
    conv_7b = cb(2080, 1536, 1)
    return (stem + mixed_5b + 10 * block35 + mixed_6a + 20 * block17 + mixed_7a + 10 * block8
            + conv_7b + linear(1536, num_classes))


def test_irv2_channel_bookkeeping():
    assert 96 + 64 + 96 + 64 == 320
    assert 384 + 384 + 320 == 1088
    assert 384 + 288 + 320 + 1088 == 2080


def test_irv2_param_count():
    expected = inception_resnet_v2_params()
    assert n_params(build("inception_resnet_v2")) == expected


def test_irv2_agrees_with_keras_count():
    # Keras InceptionResNetV2 (same TF-slim network) publishes 55,873,736 total, with
    # scale-less BN (beta + moving mean + moving variance per channel): Keras total =
    # ours + one number per BN channel. BN channels = output widths of every BasicConv2d:
    stem = 32 + 32 + 64 + 80 + 192
    mixed_5b = 96 + 48 + 64 + 64 + 96 + 96 + 64
    block35 = 32 + 32 + 32 + 32 + 48 + 64
    mixed_6a = 384 + 256 + 256 + 384
    block17 = 192 + 128 + 160 + 192
    mixed_7a = 256 + 384 + 256 + 288 + 256 + 288 + 320
    block8 = 192 + 192 + 224 + 256
    conv_7b = 1536
    bn_channels = stem + mixed_5b + 10 * block35 + mixed_6a + 20 * block17 + mixed_7a + 10 * block8 + conv_7b
    assert 2 * bn_channels == 60_544  # Keras' non-trainable count (moving statistics)
    assert 55_873_736 - bn_channels == inception_resnet_v2_params()


def test_irv2_rounded_timm_figures():
    expected = inception_resnet_v2_params()
    # HF timm card inception_resnet_v2.tf_in1k: 55.8M.
    assert round(expected / 1e6, 1) == 55.8
    # timm's docs say "Parameters: 55850000": the ported checkpoint has 1001 classes
    # (label_offset=1), i.e. one more row of 1536 weights and one more bias.
    assert round(inception_resnet_v2_params(1001) / 1e6, 2) == 55.85


def test_irv2_residual_scales_and_repeats():
    # Section 3.3 scales residuals by 0.1-0.3; the release uses 0.17 / 0.10 / 0.20.
    assert INCEPTION_RESNET_V2_SCALES == {"block35": 0.17, "block17": 0.10, "block8": 0.20}
    assert INCEPTION_RESNET_V2_REPEATS == {"block35": 10, "block17": 20, "block8": 10}
    m = build("inception_resnet_v2")
    assert len(m.repeat) == 10 and len(m.repeat_1) == 20 and len(m.repeat_2) == 9
    assert all(b.scale == 0.17 for b in m.repeat)
    assert all(b.scale == 0.10 for b in m.repeat_1)
    assert all(b.scale == 0.20 and b.relu is not None for b in m.repeat_2)
    assert m.block8.scale == 1.0 and m.block8.relu is None
    assert not hasattr(m, "AuxLogits")  # no auxiliary head, as in timm


def test_irv2_num_classes():
    m = build("inception_resnet_v2", num_classes=5)
    assert n_params(m) == inception_resnet_v2_params(5)
    assert m.classif.out_features == 5


def test_irv2_timm_names():
    names = dict(build("inception_resnet_v2").named_parameters())
    for key in ("conv2d_1a.conv.weight", "mixed_5b.branch3.1.bn.bias", "repeat.9.conv2d.bias",
                "repeat_1.19.branch1.2.conv.weight", "repeat_2.8.conv2d.weight", "block8.conv2d.weight",
                "conv2d_7b.bn.weight", "classif.weight"):
        assert key in names, key


@pytest.mark.parametrize("name", ["inception_v3", "inception_v4", "inception_resnet_v2"])
def test_default_input_and_output(name):
    info = model_info(name)
    assert info.input_size == (3, 299, 299) and info.num_classes == 1000
    m = build(name).eval()
    assert m(torch.empty(1, *info.input_size, device="meta")).shape == (1, 1000)



@pytest.mark.parametrize("name", ["inception_v4", "inception_resnet_v2"])
def test_dropout_default_is_paper_keep_0_8(name):
    m = build(name)
    assert m.head_drop.p == pytest.approx(0.2)


def test_v3_macs_match_torchvision_ops(zoo_report):
    # torchvision Inception_V3_Weights.IMAGENET1K_V1.meta["_ops"] = 5.713 GFLOPS, counted
    # as multiply-adds at 299x299 in eval mode (aux head not run): the same graph as ours.

    macs = zoo_report("inception_v3").totals.macs
    assert round(macs / 1e9, 3) == 5.713
