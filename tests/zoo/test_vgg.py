"""VGG: torchvision's published parameter counts, the paper's Table 1 by arithmetic, names."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnscope.zoo import get_model, list_models, model_info
from cnnscope.zoo.vgg import VGG_CFGS


def build(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return get_model(name, **kwargs)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# torchvision VGG*_Weights.IMAGENET1K_V1 meta "num_params" (torchvision/models/vgg.py).
TORCHVISION_NUM_PARAMS = {
    "vgg11": 132_863_336,
    "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848,
    "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240,
    "vgg19_bn": 143_678_248,
}

# The paper's Table 1: conv3 widths per block for configurations A, B, D, E.
PAPER_TABLE1 = {
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256] * 3, [512] * 3, [512] * 3],
    "vgg19": [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}


def paper_params(blocks: list[list[int]], batch_norm: bool, num_classes: int = 1000) -> int:
    total, cin = 0, 3
    for block in blocks:
        for cout in block:
            total += cin * cout * 3 * 3 + cout
            total += 2 * cout if batch_norm else 0  # BN scale and shift
            cin = cout
    # FC-4096, FC-4096, FC-num_classes on the 7x7x512 map of a 224 input.
    return total + (512 * 7 * 7 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * num_classes
                                                                         + num_classes)


def test_all_registered():
    assert list_models("vgg*") == sorted(TORCHVISION_NUM_PARAMS, key=lambda n: (int(n[3:5]), n))


@pytest.mark.parametrize("name", sorted(TORCHVISION_NUM_PARAMS))
def test_params_match_torchvision_and_table1(name):
    base, bn = name.split("_")[0], name.endswith("_bn")
    expected = TORCHVISION_NUM_PARAMS[name]
    assert paper_params(PAPER_TABLE1[base], bn) == expected
    assert n_params(build(name)) == expected
    assert model_info(name).reference_params == expected


def test_cfgs_are_table1():
    for cfg, base in zip("ABDE", ["vgg11", "vgg13", "vgg16", "vgg19"]):
        blocks, cur = [], []
        for v in VGG_CFGS[cfg]:
            if v == "M":
                blocks.append(cur)
                cur = []
            else:
                cur.append(v)
        assert blocks == PAPER_TABLE1[base]


@pytest.mark.parametrize("name", ["vgg16", "vgg19_bn"])
def test_output_shape_and_num_classes(name):
    x = torch.empty(2, 3, 224, 224, device="meta")
    assert build(name)(x).shape == (2, 1000)
    m = build(name, num_classes=10)
    assert m(x).shape == (2, 10)
    assert n_params(m) == paper_params(PAPER_TABLE1[name.split("_")[0]], name.endswith("_bn"),
                                       num_classes=10)


def test_torchvision_module_names():
    names = set(build("vgg16").state_dict())
    # torchvision vgg16: 13 convs at features.0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28.
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert {f"features.{i}.weight" for i in convs} <= names
    assert {"classifier.0.weight", "classifier.3.weight", "classifier.6.weight"} <= names
    bn_names = set(build("vgg16_bn").state_dict())
    assert {"features.1.running_mean", "features.41.weight", "classifier.6.bias"} <= bn_names


def test_receptive_field_argument_of_the_notes():
    # Course notes (seed 001): three stacked 3x3 convs cost 27 C^2 weights against 49 C^2
    # for one 7x7 with the same receptive field; check on VGG-16's conv5 stack (C = 512).
    m = build("vgg16")
    conv5 = [m.features[i] for i in (24, 26, 28)]
    assert sum(c.weight.numel() for c in conv5) == 27 * 512 ** 2
