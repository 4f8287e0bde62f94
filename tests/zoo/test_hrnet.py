"""HRNetV2-Wn-C (Wang et al. 2020): parameter arithmetic, published counts, shapes."""

import pytest
import torch
from torch import nn

from cnnscope.zoo import get_model, model_info
from cnnscope.zoo.hrnet import HighResolutionNet, hrnet_config

# Exact counts: osmr/imgclsmob pytorch/pytorchcv/models/hrnet.py _test() (weights
# converted from HRNet/HRNet-Image-Classification), matching that repository's README
# (W18-C 21.3M, W30-C 37.7M, W32-C 41.2M, W40-C 57.6M, W44-C 67.1M, W48-C 77.5M) and,
# for W18, the official code's printed "Total Parameters: 21,299,004". timm's hrnet_w*
# builds the same layers (it copies cls_hrnet.py).
PUBLISHED = {
    18: 21_299_004,
    30: 37_712_220,
    32: 41_232_680,
    40: 57_557_160,
    44: 67_064_984,
    48: 77_469_864,
    64: 128_059_944,
}
README_MILLIONS = {18: 21.3, 30: 37.7, 32: 41.2, 40: 57.6, 44: 67.1, 48: 77.5}


def conv_bn(cin, cout, k, bias=False):
    return cin * cout * k * k + (cout if bias else 0) + 2 * cout  # BN: weight + bias


def basic(cin, c):
    return conv_bn(cin, c, 3) + conv_bn(c, c, 3) + (conv_bn(cin, c, 1) if cin != c else 0)


def bottleneck(cin, p):
    out = 4 * p
    return (conv_bn(cin, p, 1) + conv_bn(p, p, 3) + conv_bn(p, out, 1)
            + (conv_bn(cin, out, 1) if cin != out else 0))


def hr_module(ch, blocks=4):
    n = len(ch)
    branches = sum(blocks * basic(c, c) for c in ch)
    fuse = 0
    for i in range(n):
        for j in range(n):
            if j > i:  # 1x1 conv + BN, then nearest upsampling (no parameters)
                fuse += conv_bn(ch[j], ch[i], 1)
            elif j < i:  # i - j strided 3x3 convs, the last one to ch[i]
                fuse += (i - j - 1) * conv_bn(ch[j], ch[j], 3) + conv_bn(ch[j], ch[i], 3)
    return branches + fuse


def hrnet_params(width, num_classes=1000, in_channels=3):
    c = width
    ch = [c, 2 * c, 4 * c, 8 * c]
    stem = conv_bn(in_channels, 64, 3) + conv_bn(64, 64, 3)
    layer1 = bottleneck(64, 64) + 3 * bottleneck(256, 64)
    transition1 = conv_bn(256, ch[0], 3) + conv_bn(256, ch[1], 3)
    stage2 = 1 * hr_module(ch[:2])
    transition2 = conv_bn(ch[1], ch[2], 3)
    stage3 = 4 * hr_module(ch[:3])
    transition3 = conv_bn(ch[2], ch[3], 3)
    stage4 = 3 * hr_module(ch)
    head_planes = [32, 64, 128, 256]
    incre = sum(bottleneck(ch[i], head_planes[i]) for i in range(4))
    downsamp = sum(conv_bn(4 * head_planes[i], 4 * head_planes[i + 1], 3, bias=True)
                   for i in range(3))
    final = conv_bn(1024, 2048, 1, bias=True)
    fc = 2048 * num_classes + num_classes
    return (stem + layer1 + transition1 + stage2 + transition2 + stage3 + transition3
            + stage4 + incre + downsamp + final + fc)


def _params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("width", sorted(PUBLISHED))
def test_arithmetic_matches_published(width):
    assert hrnet_params(width) == PUBLISHED[width]
    if width in README_MILLIONS:
        assert round(PUBLISHED[width] / 1e6, 1) == README_MILLIONS[width]


@pytest.mark.parametrize(
    "name,width", [("hrnetv2_w18", 18), ("hrnetv2_w32", 32), ("hrnetv2_w48", 48)]
)
def test_registered_params(name, width):
    info = model_info(name)
    assert info.reference_params == PUBLISHED[width]
    assert info.input_size == (3, 224, 224)
    with torch.device("meta"):
        model = get_model(name)
    assert _params(model) == hrnet_params(width) == PUBLISHED[width]


@pytest.mark.parametrize("width", [30, 40, 44, 64])
def test_other_widths_from_same_table(width):
    # The table is one function of the width: the unregistered widths must match too.
    with torch.device("meta"):
        model = HighResolutionNet(hrnet_config(width))
    assert _params(model) == PUBLISHED[width]


@pytest.fixture(scope="module")
def w18():
    with torch.device("meta"):
        return get_model("hrnetv2_w18")


# A meta forward of HRNet runs ~300 batch norms through torch's Python decompositions
# (about 2.5 s), hence the slow marks.
@pytest.mark.slow
def test_output_and_branch_shapes_meta(w18):
    seen = {}
    hook = w18.stage4.register_forward_hook(lambda m, i, o: seen.setdefault("stage4", o))
    try:
        out = w18(torch.empty(2, 3, 224, 224, device="meta"))
    finally:
        hook.remove()
    assert out.shape == (2, 1000)
    # Four resolutions at 1/4 .. 1/32 of 224 with C, 2C, 4C, 8C channels (C = 18).
    shapes = [tuple(y.shape[1:]) for y in seen["stage4"]]
    assert shapes == [(18, 56, 56), (36, 28, 28), (72, 14, 14), (144, 7, 7)]


def test_fuse_upsampling_is_a_module(w18):
    module = w18.stage4[0]
    ups = [m for m in module.fuse_layers[0][3].modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == 1 and ups[0].scale_factor == 8 and ups[0].mode == "nearest"
    # Branch 0 -> branch 3 is three strided 3x3 convs.
    convs = [m for m in module.fuse_layers[3][0].modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2)] * 3


def test_stage_structure(w18):
    assert [len(w18.stage2), len(w18.stage3), len(w18.stage4)] == [1, 4, 3]
    assert [len(w18.stage4[0].branches[i]) for i in range(4)] == [4, 4, 4, 4]
    assert len(w18.layer1) == 4


def test_num_classes_in_channels():
    with torch.device("meta"):
        model = get_model("hrnetv2_w18", num_classes=10, in_channels=1)
    assert _params(model) == hrnet_params(18, num_classes=10, in_channels=1)
    assert model.classifier.out_features == 10
    assert model.conv1.in_channels == 1


@pytest.mark.slow
def test_cpu_forward_small():
    # A real forward at 32x32 (branches 8, 4, 2, 1 pixels) checks that the fusion sums
    # line up numerically, cheaply.
    model = HighResolutionNet(hrnet_config(18), num_classes=3, in_channels=1).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 32, 32))
    assert out.shape == (1, 3) and torch.isfinite(out).all()
