"""DenseNet: torchvision's published counts, the paper's tables by arithmetic, names, cats."""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from cnnscope.zoo import get_model, list_models, model_info
from cnnscope.zoo.densenet import DENSENET_CONFIGS


def build(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return get_model(name, **kwargs)


@lru_cache(maxsize=None)
def default(name: str) -> nn.Module:
    """A default build shared by the tests (they only read it)."""
    return build(name)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def densenet_params(k: int, blocks: tuple[int, ...], init: int, *, imagenet_stem: bool,
                    num_classes: int, bn_size: int = 4) -> int:
    """DenseNet-BC parameters from the paper's table, layer by layer.

    BN: 2 per channel (scale, shift); convolutions have no bias; a dense layer on c input
    channels is BN(c) + 1x1 conv c -> bn_size * k + BN(bn_size * k) + 3x3 conv -> k; a
    transition on c channels is BN(c) + 1x1 conv c -> c // 2 (compression 0.5).
    """
    c = init
    total = 3 * init * (7 * 7 if imagenet_stem else 3 * 3)
    total += 2 * init if imagenet_stem else 0  # norm0 (the CIFAR stem has none)
    for i, layers in enumerate(blocks):
        for _ in range(layers):
            total += 2 * c + c * bn_size * k + 2 * bn_size * k + bn_size * k * k * 9
            c += k
        if i != len(blocks) - 1:
            total += 2 * c + c * (c // 2)
            c //= 2
    total += 2 * c  # final BN
    return total + c * num_classes + num_classes


# torchvision DenseNet*_Weights.IMAGENET1K_V1 meta "num_params" (torchvision/models/densenet.py).
TORCHVISION_NUM_PARAMS = {
    "densenet121": 7_978_856,
    "densenet161": 28_681_000,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
}

# Table 1 of the paper (k = 32) and the authors' densenet161 (k = 48, stem 96).
PAPER_CONFIGS = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
    "densenet264": (32, (6, 12, 64, 48), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
}


def test_configs_are_the_papers():
    for name, cfg in PAPER_CONFIGS.items():
        assert DENSENET_CONFIGS[name] == cfg
    # DenseNet-BC L = 100: (100 - 4) / 6 bottleneck layers per block, k = 12, stem 2k.
    assert DENSENET_CONFIGS["densenet_bc_100_12"] == (12, ((100 - 4) // 6,) * 3, 2 * 12)


@pytest.mark.parametrize("name", sorted(TORCHVISION_NUM_PARAMS))
def test_params_match_torchvision_and_arithmetic(name):
    expected = TORCHVISION_NUM_PARAMS[name]
    # The arithmetic reproduces torchvision's published figure: it can be trusted for 264.
    assert densenet_params(*PAPER_CONFIGS[name], imagenet_stem=True,
                           num_classes=1000) == expected
    assert n_params(default(name)) == expected == model_info(name).reference_params


def test_densenet264_by_arithmetic():
    expected = densenet_params(*PAPER_CONFIGS["densenet264"], imagenet_stem=True,
                               num_classes=1000)
    # No published exact figure to compare with: the paper gives DenseNet-264's size only
    # as a point in its Figure 3, so the arithmetic above (checked on 121-201) is the reference.
    assert n_params(default("densenet264")) == expected
    assert model_info("densenet264").reference_params is None  # not in torchvision


def test_densenet_bc_100_12_by_arithmetic():
    expected = densenet_params(12, (16, 16, 16), 24, imagenet_stem=False, num_classes=10)
    assert n_params(default("densenet_bc_100_12")) == expected
    assert round(expected / 1e6, 1) == 0.8  # Table 2 of the paper: 0.8M
    info = model_info("densenet_bc_100_12")
    assert (info.input_size, info.num_classes, info.dataset) == ((3, 32, 32), 10, "CIFAR-10")


@pytest.mark.parametrize("name, input_size, classes", [
    ("densenet121", (3, 224, 224), 1000),
    ("densenet_bc_100_12", (3, 32, 32), 10),
])
def test_output_shape(name, input_size, classes):
    assert default(name).eval()(torch.empty(2, *input_size, device="meta")).shape == (2, classes)


def test_channel_growth_and_transitions():
    m = default("densenet121")
    seen = {}
    watch = ["features.pool0", "features.denseblock1", "features.transition1",
             "features.denseblock4", "features.norm5"]
    modules = dict(m.named_modules())
    hooks = [modules[n].register_forward_hook(
        lambda mod, i, o, n=n: seen.__setitem__(n, tuple(o.shape[1:]))) for n in watch]
    m.eval()(torch.empty(1, 3, 224, 224, device="meta"))
    for h in hooks:
        h.remove()
    c1 = 64 + 6 * 32  # 256: the seeds' "64 to 256 after 6 layers"
    c4 = (((c1 // 2 + 12 * 32) // 2 + 24 * 32) // 2) + 16 * 32
    assert seen == {"features.pool0": (64, 56, 56), "features.denseblock1": (c1, 56, 56),
                    "features.transition1": (c1 // 2, 28, 28),
                    "features.denseblock4": (c4, 7, 7), "features.norm5": (1024, 7, 7)}
    assert c4 == 1024


class _CountCats(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.cats = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ == "cat":
            self.cats += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ["densenet121", "densenet_bc_100_12"])
def test_one_plain_cat_per_dense_layer(name):
    m = default(name).eval()
    size = model_info(name).input_size
    with torch.no_grad(), _CountCats() as counter:
        m(torch.empty(1, *size, device="meta"))
    assert counter.cats == sum(DENSENET_CONFIGS[name][1])


def test_torchvision_module_names():
    names = set(default("densenet121").state_dict())
    assert {"features.conv0.weight", "features.norm0.weight",
            "features.denseblock1.denselayer1.norm1.weight",
            "features.denseblock1.denselayer1.conv1.weight",
            "features.denseblock1.denselayer6.conv2.weight",
            "features.transition1.norm.weight", "features.transition1.conv.weight",
            "features.denseblock4.denselayer16.conv2.weight", "features.norm5.weight",
            "classifier.weight", "classifier.bias"} <= names
    cifar = set(default("densenet_bc_100_12").state_dict())
    assert "features.norm0.weight" not in cifar and "features.norm4.weight" in cifar


def test_num_classes_and_drop_rate():
    m = build("densenet121", num_classes=10)
    assert n_params(m) == densenet_params(32, (6, 12, 24, 16), 64, imagenet_stem=True,
                                          num_classes=10)
    m = build("densenet_bc_100_12", num_classes=100, drop_rate=0.2)
    assert m.classifier.out_features == 100
    assert m.features.denseblock1.denselayer1.dropout.p == 0.2


def test_registered_names():
    assert list_models("densenet*") == ["densenet121", "densenet161", "densenet169",
                                        "densenet201", "densenet264", "densenet_bc_100_12"]
