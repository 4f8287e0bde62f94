"""Residual Attention Network (Wang et al., CVPR 2017).

The layer table is the paper's Table 2 as built in the authors' released Caffe models
(fwang91/residual-attention-network, Attention-56/92-deploy.prototxt); osmr/imgclsmob's
resattnet56/92 follow the same table and publish 31,810,728 and 52,466,344 parameters.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnscope.zoo import get_model, model_info
from cnnscope.zoo.residual_attention import AttentionModule


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return get_model(name, **kwargs)


def unit(cin: int, cout: int) -> int:
    """Pre-activation bottleneck: BN(cin), 1x1 cin->cout/4, BN, 3x3, BN, 1x1 ->cout, and a
    1x1 projection cin->cout where the shape changes (no conv biases)."""
    m = cout // 4
    total = 2 * cin + cin * m + 2 * m + 9 * m * m + 2 * m + m * cout
    return total + (cin * cout if cin != cout else 0)


def attention(c: int, pools: int, p: int = 1, t: int = 2, r: int = 1) -> int:
    """p pre units, t trunk units, mask (per level below the first pool: r down units and
    one skip unit and r up units; 2r units at the bottom), two BN-ReLU-1x1 convs, p post."""
    levels = max(pools - 1, 0)
    mask_units = levels * (r + 1 + r) + 2 * r
    head = 2 * c + c * c + 2 * c + c * c
    return (p + t + mask_units + p) * unit(c, c) + head


def ran_imagenet(modules: tuple[int, int, int], p: int = 1, t: int = 2, r: int = 1,
                 num_classes: int = 1000) -> int:
    total = 3 * 64 * 7 * 7 + 2 * 64  # conv1 7x7/2 and its BN
    cin = 64
    for c, n, pools in zip((256, 512, 1024), modules, (3, 2, 1)):  # 56x56, 28x28, 14x14
        total += unit(cin, c) + n * attention(c, pools, p, t, r)
        cin = c
    total += unit(1024, 2048) + 2 * unit(2048, 2048)  # three units at 7x7
    return total + 2 * 2048 + 2048 * num_classes + num_classes  # final BN, fc


def ran_cifar(num_classes: int = 10) -> int:
    # tengshaofeng ResidualAttentionModel_92_32input_update: 3x3 conv to 32, stages of
    # 128/256/512 channels with 1/2/3 modules and 2/1/0 mask pools, three 1024 units.
    total = 3 * 32 * 3 * 3 + 2 * 32
    cin = 32
    for c, n, pools in zip((128, 256, 512), (1, 2, 3), (2, 1, 0)):
        total += unit(cin, c) + n * attention(c, pools)
        cin = c
    total += unit(512, 1024) + 2 * unit(1024, 1024)
    return total + 2 * 1024 + 1024 * num_classes + num_classes


def test_arithmetic_matches_published_counts() -> None:
    assert ran_imagenet((1, 1, 1)) == 31_810_728  # imgclsmob resattnet56
    assert ran_imagenet((1, 2, 3)) == 52_466_344  # imgclsmob resattnet92


@pytest.mark.parametrize("name,modules,published", [
    ("residual_attention_56", (1, 1, 1), 31_810_728),
    ("residual_attention_92", (1, 2, 3), 52_466_344),
])
def test_param_count(name: str, modules: tuple[int, int, int], published: int) -> None:
    assert n_params(build(name)) == ran_imagenet(modules) == published
    assert model_info(name).reference_params == published


def test_against_paper_table2() -> None:
    # Table 2: Attention-56 31.9M, Attention-92 51.3M. The released model's layer table
    # gives 31.81M (0.28% below; rounds to 31.8M) and 52.47M (2.3% above). The paper does
    # not say how it counted; we trust the released models (see the module docstring).
    a56, a92 = ran_imagenet((1, 1, 1)), ran_imagenet((1, 2, 3))
    assert abs(a56 / 31.9e6 - 1) < 0.003
    assert abs(a92 / 51.3e6 - 1) < 0.025


def test_cifar_param_count() -> None:
    assert n_params(build("residual_attention_92_cifar")) == ran_cifar()
    assert n_params(build("residual_attention_92_cifar", num_classes=100)) == ran_cifar(100)


def test_options_p_t_r() -> None:
    # Attention-452's module setting {p=2, t=4, r=3} on the Attention-56 layout.
    assert n_params(build("residual_attention_56", p=2, t=4, r=3)) == \
        ran_imagenet((1, 1, 1), p=2, t=4, r=3)
    assert n_params(build("residual_attention_56", num_classes=10)) == \
        ran_imagenet((1, 1, 1), num_classes=10)


@pytest.mark.parametrize("name,classes", [("residual_attention_56", 1000),
                                          ("residual_attention_92_cifar", 10)])
def test_output_shape_on_meta(name: str, classes: int) -> None:
    model = build(name).eval()
    x = torch.empty(2, *model_info(name).input_size, device="meta")
    assert model(x).shape == (2, classes)


def test_every_mask_bottoms_out_at_7x7() -> None:
    # Mask pooling steps fall 3, 2, 1 from stage to stage so the lowest mask is 7x7.
    model = build("residual_attention_56").eval()
    bottoms = []
    for layer in (model.layer1, model.layer2, model.layer3):
        module = layer[1]
        assert isinstance(module, AttentionModule)
        module.mask_middle.register_forward_hook(
            lambda m, i, o: bottoms.append(tuple(o.shape[-2:])))
    model(torch.empty(1, 3, 224, 224, device="meta"))
    assert bottoms == [(7, 7)] * 3
    pools = [sum(isinstance(m, nn.MaxPool2d) for m in layer[1].modules())
             for layer in (model.layer1, model.layer2, model.layer3)]
    assert pools == [3, 2, 1]


def test_attention_residual_learning() -> None:
    # out = post((1 + M(x)) * T(x)); the mask is a sigmoid, so the trunk is at most doubled.
    torch.manual_seed(0)
    module = AttentionModule(16, pools=2).eval()
    x = torch.randn(2, 16, 12, 12)
    pre = module.pre(x)
    mask = module.mask(pre)
    assert mask.shape == pre.shape and bool(((mask > 0) & (mask < 1)).all())
    torch.testing.assert_close(module(x), module.post((1 + mask) * module.trunk(pre)))
