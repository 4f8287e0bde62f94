"""Wide ResNet (CIFAR), convolutional highway networks and FractalNet.

Expected counts are published (osmr/imgclsmob's wrn28_10_cifar10 and fractalnet_cifar10)
or written out below from the layer tables; the paper figures they are compared with are
rounded, and each comparison says how close it is.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnscope.zoo import get_model, model_info
from cnnscope.zoo.fractalnet import FractalBlock, FractalConv
from cnnscope.zoo.highway import HighwayConv2d


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return get_model(name, **kwargs)


def conv3x3(cin: int, cout: int, bias: bool = False) -> int:
    return cin * cout * 3 * 3 + (cout if bias else 0)


# ------------------------------------------------------------------------------------ WRN


def wrn(depth: int, k: int, num_classes: int = 10) -> int:
    """WRN-d-k: conv 3->16, three groups of n = (d-4)/6 pre-activation basic blocks
    (BN, 3x3, BN, 3x3; 1x1 projection in the first block of a group), BN, fc."""
    n = (depth - 4) // 6
    total = conv3x3(3, 16)
    cin = 16
    for width in (16 * k, 32 * k, 64 * k):
        for b in range(n):
            c = cin if b == 0 else width
            total += 2 * c + conv3x3(c, width) + 2 * width + conv3x3(width, width)
            if b == 0:
                total += c * width
        cin = width
    return total + 2 * cin + cin * num_classes + num_classes


def test_wrn28_10_param_count() -> None:
    # Published: osmr/imgclsmob wrn28_10_cifar10 = 36,479,194; the paper says 36.5M.
    assert wrn(28, 10) == 36_479_194
    assert n_params(build("wrn28_10")) == 36_479_194 == model_info("wrn28_10").reference_params
    assert round(36_479_194 / 1e6, 1) == 36.5


def test_wrn_options() -> None:
    assert n_params(build("wrn28_10", depth=16, widen_factor=8)) == wrn(16, 8)
    assert round(wrn(16, 8) / 1e6, 1) == 11.0  # the paper's WRN-16-8: 11.0M
    assert n_params(build("wrn28_10", num_classes=100)) == wrn(28, 10, 100)
    model = build("wrn28_10", dropout=0.3)
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 12  # one per block
    assert n_params(model) == 36_479_194  # dropout adds no parameters
    assert not any(isinstance(m, nn.Dropout) for m in build("wrn28_10").modules())
    with pytest.raises(ValueError, match="depth must be 6n\\+4, got 27"):
        build("wrn28_10", depth=27)


def test_wrn_output_shape_on_meta() -> None:
    model = build("wrn28_10").eval()
    assert model(torch.empty(2, 3, 32, 32, device="meta")).shape == (2, 10)


# -------------------------------------------------------------------------------- Highway


def highway_net(stages: tuple[tuple[int, int], ...], head: int = 100,
                num_classes: int = 10) -> int:
    """Per stage a plain 3x3 conv (with bias) and highway layers (H and T convs, both with
    bias), then a 1x1 conv to ``head`` maps and the fc."""
    total, cin = 0, 3
    for width, highways in stages:
        total += conv3x3(cin, width, bias=True) + highways * 2 * conv3x3(width, width, True)
        cin = width
    return total + cin * head + head + head * num_classes + num_classes


def test_highway19_param_count() -> None:
    # The authors' cifar10-19layers prototxt: 32x(1+4), 80x(1+5), 128x(1+5), 1x1 to 100.
    expected = highway_net(((32, 4), (80, 5), (128, 5)))
    assert expected == 2_256_838
    assert n_params(build("highway")) == expected
    assert round(expected / 1e6, 1) == 2.3  # the paper's Table 2: ~2.3M


def test_highway32_param_count() -> None:
    # Our reconstruction of "Highway C" (widths chosen by us; the paper gives ~1.25M).
    expected = highway_net(((32, 9), (48, 9), (64, 9)))
    assert n_params(build("highway32")) == expected
    assert abs(expected / 1.25e6 - 1) < 0.005


@pytest.mark.parametrize("name,depth", [("highway", 19), ("highway32", 32)])
def test_highway_depth_and_shape(name: str, depth: int) -> None:
    model = build(name)
    weight_layers = sum(isinstance(m, (HighwayConv2d, nn.Linear)) for m in model.modules())
    weight_layers += sum(isinstance(m, nn.Conv2d) for m in model.features.children())
    assert weight_layers == depth
    out = model.eval()(torch.empty(2, 3, 32, 32, device="meta"))
    assert out.shape == (2, 10)


def test_highway_options() -> None:
    assert n_params(build("highway", num_classes=100)) == highway_net(
        ((32, 4), (80, 5), (128, 5)), num_classes=100)
    assert not any(isinstance(m, nn.Dropout) for m in build("highway", dropout=0).modules())
    assert sum(isinstance(m, nn.Dropout) for m in build("highway").modules()) == 4


def test_highway_layer_and_gate_bias() -> None:
    torch.manual_seed(0)
    layer = HighwayConv2d(4)
    x = torch.randn(2, 4, 6, 6)
    t = torch.sigmoid(layer.gate(x))
    torch.testing.assert_close(layer(x), torch.relu(layer.conv(x)) * t + x * (1 - t))
    model = get_model("highway", gate_bias=-3.0)  # CPU: read the initial values
    gates = [m.gate.bias for m in model.modules() if isinstance(m, HighwayConv2d)]
    assert len(gates) == 14 and all(bool((b == -3.0).all()) for b in gates)


# ----------------------------------------------------------------------------- FractalNet


CHANNELS = (64, 128, 256, 512, 512)


def fractal(columns: int, num_classes: int = 10) -> int:
    """Per block 2^C - 1 conv-BN-ReLU layers (no conv bias): the first layer of each of the
    C columns reads the block input, the other 2^C - 1 - C read ``planes`` channels."""
    total, cin = 0, 3
    for planes in CHANNELS:
        layers = 2 ** columns - 1
        total += columns * conv3x3(cin, planes) + (layers - columns) * conv3x3(planes, planes)
        total += layers * 2 * planes
        cin = planes
    return total + 512 * num_classes + num_classes


def test_fractalnet_param_counts() -> None:
    # C=3 (20 layers) is published: osmr/imgclsmob fractalnet_cifar10 = 33,724,618.
    assert fractal(3) == 33_724_618
    assert n_params(build("fractalnet20")) == 33_724_618
    assert n_params(build("fractalnet")) == fractal(4) == 76_106_634
    # The paper's 38.6M (Table 1, as the task quoted it for the 40-layer net; to our
    # reading the 20-layer net's figure) is reproduced by neither: C=3 is 12.6% below,
    # C=4 is 97% above. The Caffe convolutions' biases would add 10,304 / 22,080.
    assert abs(fractal(3) / 38.6e6 - 1) > 0.1 and fractal(4) > 1.9 * 38.6e6


def test_fractalnet_depth_and_joins() -> None:
    model = build("fractalnet")
    blocks = list(model.blocks)
    assert len(blocks) == 5
    for block in blocks:
        assert [len(c) for c in block.columns] == [8, 4, 2, 1]  # 15 = 2^4 - 1 layers
    assert sum(len(b.columns[0]) for b in blocks) == 40  # B * 2^(C-1)
    out = model.eval()(torch.empty(2, 3, 32, 32, device="meta"))
    assert out.shape == (2, 10)


def test_fractalnet_options() -> None:
    assert n_params(build("fractalnet", num_columns=2)) == fractal(2)
    assert n_params(build("fractalnet20", num_classes=100)) == fractal(3, num_classes=100)
    assert sum(isinstance(m, nn.Dropout) for m in build("fractalnet20").modules()) == 4 * 7
    assert not any(isinstance(m, nn.Dropout)
                   for m in build("fractalnet20", dropout=None).modules())


def test_fractal_join_is_the_mean() -> None:
    # C=2: step 1 runs the deep column's first layer; step 2 its second layer and the
    # shallow column's only layer, each pooled, then averaged.
    torch.manual_seed(0)
    block = FractalBlock(3, 4, num_columns=2).eval()
    x = torch.randn(2, 3, 8, 8)
    deep = block.pool(block.columns[0][1](block.columns[0][0](x)))
    shallow = block.pool(block.columns[1][0](x))
    torch.testing.assert_close(block(x), (deep + shallow) / 2)
    assert isinstance(block.columns[0][0], FractalConv)
