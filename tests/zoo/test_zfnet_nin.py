"""ZFNet and Network In Network: parameter counts by arithmetic, map sizes, options."""

from __future__ import annotations

import torch

from cnnscope.zoo import get_model, model_info


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(name: str, **kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        return get_model(name, **kwargs)


def conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def linear(cin: int, cout: int) -> int:
    return cin * cout + cout


# ---------------------------------------------------------------------------- ZFNet


def zfnet_params(num_classes: int = 1000) -> int:
    """Zeiler & Fergus Figure 3: five conv layers (dense, no groups) and three FC layers."""
    return (conv(3, 96, 7) + conv(96, 256, 5) + conv(256, 384, 3) + conv(384, 384, 3)
            + conv(384, 256, 3)
            + linear(256 * 6 * 6, 4096) + linear(4096, 4096) + linear(4096, num_classes))


def test_zfnet_param_count():
    # The paper publishes no count; the reference is the arithmetic above.
    assert n_params(build("zfnet")) == zfnet_params()


def test_zfnet_feature_map_sizes_match_figure_3():
    info = model_info("zfnet")
    assert info.input_size == (3, 224, 224)
    m = build("zfnet").eval()
    x = torch.empty(1, *info.input_size, device="meta")
    sizes = []
    for layer in m.features:
        x = layer(x)
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.MaxPool2d)):
            sizes.append(x.shape[-1])
    # conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5
    assert sizes == [110, 55, 26, 13, 13, 13, 13, 6]
    assert x.shape == (1, 256, 6, 6)
    assert m(torch.empty(1, *info.input_size, device="meta")).shape == (1, 1000)


def test_zfnet_has_contrast_normalisation_after_first_two_pools():
    kinds = [type(layer).__name__ for layer in build("zfnet").features]
    assert kinds[:8] == ["Conv2d", "ReLU", "MaxPool2d", "LocalResponseNorm",
                         "Conv2d", "ReLU", "MaxPool2d", "LocalResponseNorm"]
    assert kinds.count("LocalResponseNorm") == 2


def test_zfnet_num_classes():
    m = build("zfnet", num_classes=200)
    assert n_params(m) == zfnet_params(200)
    assert m.classifier[-1].out_features == 200


# ---------------------------------------------------------------------------- NIN


def nin_params(num_classes: int = 10) -> int:
    """The authors' CIFAR-10 NIN: three mlpconv blocks, each conv with bias; no FC layer."""
    block1 = conv(3, 192, 5) + conv(192, 160, 1) + conv(160, 96, 1)
    block2 = conv(96, 192, 5) + conv(192, 192, 1) + conv(192, 192, 1)
    block3 = conv(192, 192, 3) + conv(192, 192, 1) + conv(192, num_classes, 1)
    return block1 + block2 + block3


def test_nin_param_count():
    # The paper publishes no count; the reference is the arithmetic above.
    assert n_params(build("nin")) == nin_params()


def test_nin_shapes():
    info = model_info("nin")
    assert info.input_size == (3, 32, 32) and info.num_classes == 10 and info.dataset == "CIFAR-10"
    m = build("nin").eval()
    x = torch.empty(2, *info.input_size, device="meta")
    x = m.pool1(m.block1(x))
    assert x.shape == (2, 96, 16, 16)
    x = m.pool2(m.block2(x))
    assert x.shape == (2, 192, 8, 8)
    assert m(torch.empty(2, *info.input_size, device="meta")).shape == (2, 10)


def test_nin_layers():
    m = build("nin")
    assert isinstance(m.pool1, torch.nn.MaxPool2d) and isinstance(m.pool2, torch.nn.AvgPool2d)
    assert m.drop1.p == 0.5 and m.drop2.p == 0.5
    names = dict(m.named_parameters())
    for key in ("block1.conv1.weight", "block1.cccp2.bias", "block2.cccp4.weight", "block3.cccp6.weight"):
        assert key in names, key


def test_nin_num_classes_sets_last_mlpconv_width():
    m = build("nin", num_classes=100)
    assert n_params(m) == nin_params(100)
    assert m.block3.cccp6.out_channels == 100
    assert m(torch.empty(1, 3, 32, 32, device="meta")).shape == (1, 100)
