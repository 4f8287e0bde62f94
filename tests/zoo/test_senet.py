"""SE-ResNet / SE-ResNeXt / SENet-154 (Hu et al. 2018) and competitive SE (Hu et al. 2018).

Expected parameter counts are either published (Cadene's pretrainedmodels, kept by timm as
legacy_* and asserted by osmr/imgclsmob) or written out below from the layer tables; none
is copied from the models' own output.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnscope.zoo import get_model, model_info
from cnnscope.zoo.cmpe_senet import CMPE_VARIANTS, CompetitiveSE
from cnnscope.zoo.senet import SEModule


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return get_model(name, **kwargs)


# ------------------------------------------------------------------ layer-table arithmetic


def conv(cin: int, cout: int, k: int = 1, groups: int = 1, bias: bool = False) -> int:
    return cin // groups * cout * k * k + (cout if bias else 0)


def bn(c: int) -> int:
    return 2 * c


def se(c: int, r: int = 16) -> int:
    # fc1 (1x1 conv C -> C/r, bias) + fc2 (C/r -> C, bias)
    return conv(c, c // r, bias=True) + conv(c // r, c, bias=True)


def senet_params(kind: str, layers: tuple[int, ...], groups: int = 1, r: int = 16,
                 num_classes: int = 1000, in_channels: int = 3) -> int:
    """SENet from its layer table: stem, four stages of SE bottlenecks, fc."""
    if kind == "senet154":
        inplanes = 128
        total = (conv(in_channels, 64, 3) + bn(64) + conv(64, 64, 3) + bn(64)
                 + conv(64, 128, 3) + bn(128))
        ds_kernel = 3
    else:
        inplanes = 64
        total = conv(in_channels, 64, 7) + bn(64)
        ds_kernel = 1
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
        out = planes * 4
        if kind == "resnet":
            mid1 = mid2 = planes
        elif kind == "resnext":
            mid1 = mid2 = planes * 4 // 64 * groups  # floor(planes * 4 / 64) * 32
        else:  # senet154: 1x1 to 2*planes, grouped 3x3 to 4*planes
            mid1, mid2 = planes * 2, planes * 4
        for b in range(blocks):
            cin = inplanes if b == 0 else out
            total += (conv(cin, mid1) + bn(mid1) + conv(mid1, mid2, 3, groups) + bn(mid2)
                      + conv(mid2, out) + bn(out) + se(out, r))
            if b == 0:  # projection shortcut (channels change in stage 1, stride elsewhere)
                k = 1 if stage == 0 else ds_kernel
                total += conv(cin, out, k) + bn(out)
        inplanes = out
    return total + 2048 * num_classes + num_classes


# Published counts: Cadene's pretrainedmodels (timm legacy_*), the same numbers asserted in
# osmr/imgclsmob's tests. timm's legacy_seresnet50 etc. have the identical definition.
PUBLISHED = {
    "se_resnet50": (28_088_024, senet_params("resnet", (3, 4, 6, 3))),
    "se_resnext50_32x4d": (27_559_896, senet_params("resnext", (3, 4, 6, 3), groups=32)),
}
PUBLISHED_LARGE = {
    "se_resnet101": (49_326_872, senet_params("resnet", (3, 4, 23, 3))),
    "se_resnet152": (66_821_848, senet_params("resnet", (3, 8, 36, 3))),
    "se_resnext101_32x4d": (48_955_416, senet_params("resnext", (3, 4, 23, 3), groups=32)),
    "senet154": (115_088_984, senet_params("senet154", (3, 8, 36, 3), groups=64)),
}


def test_arithmetic_reproduces_published_counts() -> None:
    # The layer tables above must give the published numbers before they test anything.
    for published, arithmetic in {**PUBLISHED, **PUBLISHED_LARGE}.values():
        assert arithmetic == published


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_param_count(name: str) -> None:
    published, arithmetic = PUBLISHED[name]
    assert n_params(build(name)) == published == arithmetic
    assert model_info(name).reference_params == published


@pytest.mark.parametrize("name", sorted(PUBLISHED_LARGE))
def test_param_count_large(name: str) -> None:
    published, _ = PUBLISHED_LARGE[name]
    assert n_params(build(name)) == published


def test_se_adds_what_the_paper_says_to_resnet50() -> None:
    # torchvision's ResNet-50 (25,557,032, ResNet50_Weights.IMAGENET1K_V1) plus one SE gate
    # per block: 3 at C=256, 4 at 512, 6 at 1024, 3 at 2048. The paper's Table gives 28.1M
    # for SE-ResNet-50 (vs 25.6M for ResNet-50).
    se_total = 3 * se(256) + 4 * se(512) + 6 * se(1024) + 3 * se(2048)
    assert 25_557_032 + se_total == 28_088_024
    assert round(n_params(build("se_resnet50")) / 1e6, 1) == 28.1
    # torchvision's ResNeXt-50 32x4d (25,028,904) plus the same gates.
    assert 25_028_904 + se_total == 27_559_896


@pytest.mark.parametrize("name", ["se_resnet50", "se_resnext50_32x4d"])
def test_output_shape_on_meta(name: str) -> None:
    model = build(name).eval()
    x = torch.empty(2, *model_info(name).input_size, device="meta")
    assert model(x).shape == (2, 1000)


def test_stride_placement() -> None:
    # SE-ResNet: stride in the first 1x1 (authors' Caffe models); SE-ResNeXt: in the 3x3.
    resnet = build("se_resnet50")
    assert resnet.layer2[0].conv1.stride == (2, 2) and resnet.layer2[0].conv2.stride == (1, 1)
    resnext = build("se_resnext50_32x4d")
    assert resnext.layer2[0].conv1.stride == (1, 1) and resnext.layer2[0].conv2.stride == (2, 2)
    assert resnext.layer1[0].conv2.groups == 32 and resnext.layer1[0].conv2.out_channels == 128


def test_options() -> None:
    assert n_params(build("se_resnet50", num_classes=10)) == senet_params(
        "resnet", (3, 4, 6, 3), num_classes=10)
    assert n_params(build("se_resnet50", reduction=8)) == senet_params(
        "resnet", (3, 4, 6, 3), r=8)
    assert n_params(build("se_resnet50", in_channels=1)) == senet_params(
        "resnet", (3, 4, 6, 3), in_channels=1)
    assert build("se_resnet50").dropout is None
    assert isinstance(build("se_resnet50", drop_rate=0.2).dropout, nn.Dropout)


def test_se_module_is_a_channel_gate() -> None:
    torch.manual_seed(0)
    gate = SEModule(32, reduction=16)
    x = torch.randn(2, 32, 5, 5)
    s = torch.sigmoid(gate.fc2(torch.relu(gate.fc1(x.mean((2, 3), keepdim=True)))))
    torch.testing.assert_close(gate(x), x * s)


# ------------------------------------------------------------------------ competitive SE


def gate_params(variant: str, c: int, r: int, maps: int, fold_groups: int) -> int:
    """Parameters of one competitive SE gate on C channels (authors' MXNet code)."""
    h = c // r
    if variant == "se":
        return c * h + h * c
    if variant == "double_fc":
        return c * h + c * h + 2 * h * c  # two squeezes, one excitation on the concatenation
    if variant == "pair_1x1":
        kernel, features = 1, 2 * c  # m 1x1 filters on the C x 2 image, then fc 2C -> C/r
    elif variant == "pair_2x1":
        kernel, features = 2, c  # m 1x2 filters see each (residual, identity) pair: C x 1
    else:
        g = fold_groups  # 2G x C/G image, 3x3 filters without padding
        kernel, features = 9, (2 * g - 2) * (c // g - 2)
    return maps * kernel + bn(maps) + features * h + h * c


def cmpe_resnet_params(depth: int = 164, variant: str = "pair_2x1", r: int = 16,
                       num_classes: int = 10) -> int:
    """Pre-activation bottleneck CIFAR ResNet (9n+2) with a CMPE-SE gate per block."""
    n = (depth - 2) // 9
    total = conv(3, 16, 3)  # data_bn has no affine parameters
    inplanes = 16
    for planes in (16, 32, 64):
        out = 4 * planes
        for b in range(n):
            cin = inplanes if b == 0 else out
            total += (bn(cin) + conv(cin, planes) + bn(planes) + conv(planes, planes, 3)
                      + bn(planes) + conv(planes, out))
            if b == 0:
                total += conv(cin, out)  # projection of the pre-activated input
            # inner-imaging maps: bottleneck width / 16; folding: C / 16 groups of 16
            total += gate_params(variant, out, r, max(1, planes // 16), out // 16)
        inplanes = out
    return total + bn(256) + 256 * num_classes + num_classes


def wrn_params(depth: int, k: int, num_classes: int = 10) -> int:
    """Plain WRN-d-k (Zagoruyko & Komodakis), pre-activation basic blocks."""
    n = (depth - 4) // 6
    total = conv(3, 16, 3)
    inplanes = 16
    for width in (16 * k, 32 * k, 64 * k):
        for b in range(n):
            cin = inplanes if b == 0 else width
            total += bn(cin) + conv(cin, width, 3) + bn(width) + conv(width, width, 3)
            if b == 0:
                total += conv(cin, width)
        inplanes = width
    return total + bn(inplanes) + inplanes * num_classes + num_classes


def cmpe_wrn_params(depth: int = 28, k: int = 10, variant: str = "pair_2x1",
                    r: int = 16) -> int:
    n = (depth - 4) // 6
    gates = sum(n * gate_params(variant, w, r, w // 16, k) for w in (16 * k, 32 * k, 64 * k))
    return wrn_params(depth, k) + bn(16) + gates  # + the authors' BN after the stem conv


def test_wrn_arithmetic_matches_published_wrn28_10() -> None:
    # osmr/imgclsmob wrn28_10_cifar10: 36,479,194 (the CMPE-SE-WRN backbone).
    assert wrn_params(28, 10) == 36_479_194


@pytest.mark.parametrize("variant", CMPE_VARIANTS)
def test_cmpe_resnet_param_count(variant: str) -> None:
    # Small depth keeps the build fast; the formula is depth-independent per block.
    assert n_params(build("cmpe_se_resnet164", depth=20, variant=variant)) == \
        cmpe_resnet_params(20, variant)


@pytest.mark.parametrize("variant", CMPE_VARIANTS)
def test_cmpe_wrn_param_count(variant: str) -> None:
    assert n_params(build("cmpe_se_wrn28_10", depth=10, widen_factor=2, variant=variant)) == \
        cmpe_wrn_params(10, 2, variant)


def test_cmpe_default_param_counts() -> None:
    # No published exact count exists; these are the layer-table sums (default gate:
    # 1x2 pair-view inner imaging, r = 16).
    assert n_params(build("cmpe_se_resnet164")) == cmpe_resnet_params(164, "pair_2x1")
    assert n_params(build("cmpe_se_wrn28_10")) == cmpe_wrn_params(28, 10, "pair_2x1")


@pytest.mark.parametrize("variant", CMPE_VARIANTS)
def test_cmpe_output_shape_on_meta(variant: str) -> None:
    for name, kw in (("cmpe_se_resnet164", {"depth": 20}),
                     ("cmpe_se_wrn28_10", {"depth": 10, "widen_factor": 2})):
        model = build(name, variant=variant, **kw).eval()
        assert model(torch.empty(2, 3, 32, 32, device="meta")).shape == (2, 10)
    model = build("cmpe_se_resnet164", depth=20, num_classes=100).eval()
    assert model(torch.empty(1, 3, 32, 32, device="meta")).shape == (1, 100)


def test_cmpe_options_validate() -> None:
    with pytest.raises(ValueError, match="depth 9n\\+2, got 32"):
        build("cmpe_se_resnet164", depth=32)  # 32 is 6n+2 (basic blocks), not 9n+2
    with pytest.raises(ValueError, match="unknown CMPE-SE variant 'triple_fc'"):
        build("cmpe_se_wrn28_10", variant="triple_fc")


@pytest.mark.parametrize("variant", [v for v in CMPE_VARIANTS if v != "se"])
def test_competitive_gate_sees_the_identity(variant: str) -> None:
    # The competitive gate depends on the identity mapping; plain SE does not. Either way
    # only the residual branch is rescaled.
    torch.manual_seed(0)
    gate = CompetitiveSE(32, variant, reduction=4, maps=2, fold_groups=4).eval()
    residual = torch.randn(2, 32, 4, 4)
    a = gate(residual, torch.randn(2, 32, 4, 4))
    b = gate(residual, torch.randn(2, 32, 4, 4))
    assert not torch.allclose(a, b)
    plain = CompetitiveSE(32, "se", reduction=4).eval()
    torch.testing.assert_close(plain(residual, torch.randn(2, 32, 4, 4)),
                               plain(residual, torch.randn(2, 32, 4, 4)))
    ratio = a / residual  # a per-(sample, channel) scale in (0, 1)
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio), atol=1e-5)
    assert bool(((ratio > 0) & (ratio < 1)).all())
