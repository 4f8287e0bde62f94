"""DenseNet (Huang et al. 2017): torchvision's ImageNet definition and the CIFAR DenseNet-BC.

Every variant is DenseNet-BC: bottleneck layers BN-ReLU-1x1 conv (bn_size * k filters)
-BN-ReLU-3x3 conv (k filters), and transitions BN-ReLU-1x1 conv-2x2 average pool that
halve the channels (compression 0.5). Each layer's output is concatenated onto its
input with a plain ``torch.cat`` in the block's forward, the naive implementation the
paper describes, so the tracer sees every concatenation. Module names are torchvision's.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = ["DenseNet", "DENSENET_CONFIGS", "densenet121", "densenet161", "densenet169",
           "densenet201", "densenet264", "densenet_bc_100_12"]

PAPER = "Huang et al., Densely Connected Convolutional Networks, CVPR 2017"

# name -> (growth_rate k, block_config, num_init_features). Table 1 of the paper for
# 121/169/201/264 (k = 32, stem 2k = 64); densenet161 (k = 48, stem 96) is the authors'
# released ImageNet model that torchvision also ships; densenet_bc_100_12 is Table 2's
# DenseNet-BC (L = 100, k = 12): (100 - 4) / 6 = 16 bottleneck layers per block.
DENSENET_CONFIGS: dict[str, tuple[int, tuple[int, ...], int]] = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
    "densenet264": (32, (6, 12, 64, 48), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
    "densenet_bc_100_12": (12, (16, 16, 16), 24),
}


class _DenseLayer(nn.Module):
    """Bottleneck layer: BN-ReLU-1x1 conv (bn_size * k) - BN-ReLU-3x3 conv (k new maps)."""

    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int,
                 drop_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1,
                               bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1,
                               bias=False)
        # The paper uses dropout after each convolution only on CIFAR without augmentation.
        self.dropout = nn.Dropout(p=drop_rate) if drop_rate > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(self.relu1(self.norm1(x)))
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.dropout is not None:
            out = self.dropout(out)
        return out


class _DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; layer i reads the concatenation of the block input and
    the i - 1 earlier outputs (c0 + (i - 1) * k channels)."""

    def __init__(self, num_layers: int, num_input_features: int, bn_size: int,
                 growth_rate: int, drop_rate: float) -> None:
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = _DenseLayer(
                num_input_features + i * growth_rate, growth_rate, bn_size, drop_rate)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.values():
            x = torch.cat([x, layer(x)], 1)
        return x


class _Transition(nn.Sequential):
    """BN-ReLU-1x1 conv-2x2/2 average pool between blocks."""

    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1,
                              bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    """Stem, dense blocks joined by transitions, BN-ReLU, global average pool, classifier.

    ``small_inputs`` selects the CIFAR stem of the paper (one 3x3 convolution, no pooling)
    instead of the ImageNet stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool).
    """

    def __init__(self, growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, drop_rate: float = 0.0,
                 num_classes: int = 1000, compression: float = 0.5,
                 small_inputs: bool = False, in_channels: int = 3) -> None:
        super().__init__()
        if small_inputs:
            stem = [("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=3,
                                        padding=1, bias=False))]
        else:
            stem = [
                ("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=7, stride=2,
                                    padding=3, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)),
                ("relu0", nn.ReLU()),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ]
        self.features = nn.Sequential(OrderedDict(stem))

        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(
                f"denseblock{i + 1}",
                _DenseBlock(num_layers, num_features, bn_size, growth_rate, drop_rate))
            num_features += num_layers * growth_rate
            if i != len(block_config) - 1:
                out_features = int(num_features * compression)  # floor, as the authors' code
                self.features.add_module(f"transition{i + 1}",
                                         _Transition(num_features, out_features))
                num_features = out_features
        self.features.add_module(f"norm{len(block_config) + 1}", nn.BatchNorm2d(num_features))

        # torchvision applies these two as functions in forward; modules here for the tracer.
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(num_features, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.features(x))
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def _densenet(name: str, **kwargs) -> DenseNet:
    growth_rate, block_config, num_init_features = DENSENET_CONFIGS[name]
    return DenseNet(growth_rate, block_config, num_init_features, **kwargs)


def _ref(name: str) -> str:
    return f"torchvision {name}_Weights.IMAGENET1K_V1 meta num_params"


@register_model(family="DenseNet", paper=PAPER, year=2017, reference_params=7_978_856,
                reference_source=_ref("DenseNet121"))
def densenet121(**kwargs) -> nn.Module:
    """DenseNet-121 (Huang et al. 2017, Table 1): k = 32, blocks (6, 12, 24, 16).

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's definition, which is the
    paper's DenseNet-BC (bn_size 4, compression 0.5, stem 2k = 64). Options: ``num_classes``,
    ``drop_rate``, ``bn_size``, ``compression``, ``in_channels``.
    """
    return _densenet("densenet121", **kwargs)


@register_model(family="DenseNet", paper=PAPER, year=2017, reference_params=14_149_480,
                reference_source=_ref("DenseNet169"))
def densenet169(**kwargs) -> nn.Module:
    """DenseNet-169 (Huang et al. 2017, Table 1): k = 32, blocks (6, 12, 32, 32).

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's definition, which is the
    paper's DenseNet-BC (bn_size 4, compression 0.5, stem 2k = 64). Options: ``num_classes``,
    ``drop_rate``, ``bn_size``, ``compression``, ``in_channels``.
    """
    return _densenet("densenet169", **kwargs)


@register_model(family="DenseNet", paper=PAPER, year=2017, reference_params=20_013_928,
                reference_source=_ref("DenseNet201"))
def densenet201(**kwargs) -> nn.Module:
    """DenseNet-201 (Huang et al. 2017, Table 1): k = 32, blocks (6, 12, 48, 32).

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's definition, which is the
    paper's DenseNet-BC (bn_size 4, compression 0.5, stem 2k = 64). Options: ``num_classes``,
    ``drop_rate``, ``bn_size``, ``compression``, ``in_channels``.
    """
    return _densenet("densenet201", **kwargs)


@register_model(family="DenseNet", paper=PAPER, year=2017)
def densenet264(**kwargs) -> nn.Module:
    """DenseNet-264 (Huang et al. 2017, Table 1): k = 32, blocks (6, 12, 64, 48).

    Input 3x224x224 (ImageNet), 1000 classes. Not in torchvision; built from the paper's
    Table 1 with the same conventions as densenet121 (bn_size 4, compression 0.5, stem 64).
    No exact published count: the test derives it from the table. Options: ``num_classes``,
    ``drop_rate``, ``bn_size``, ``compression``, ``in_channels``.
    """
    return _densenet("densenet264", **kwargs)


@register_model(family="DenseNet", paper=PAPER, year=2017, reference_params=28_681_000,
                reference_source=_ref("DenseNet161"))
def densenet161(**kwargs) -> nn.Module:
    """DenseNet-161 (Huang et al. 2017): k = 48, stem 96, blocks (6, 12, 36, 24).

    Input 3x224x224 (ImageNet), 1000 classes. Not in the paper's Table 1: the wider model
    of the authors' code (models/densenet.lua, depth 161 with growth rate 48), as torchvision
    has it. Options: ``num_classes``, ``drop_rate``, ``bn_size``, ``compression``, ``in_channels``.
    """
    return _densenet("densenet161", **kwargs)


@register_model(family="DenseNet", paper=PAPER, year=2017, input_size=(3, 32, 32),
                num_classes=10, dataset="CIFAR-10")
def densenet_bc_100_12(**kwargs) -> nn.Module:
    """DenseNet-BC (L = 100, k = 12) for CIFAR-10 (Huang et al. 2017, Table 2).

    Input 3x32x32 (CIFAR-10), 10 classes. As the authors' code (models/densenet.lua): a
    3x3 stem convolution with 2k = 24 filters, three dense blocks of 16 bottleneck layers
    (32x32, 16x16, 8x8) joined by transitions with compression 0.5, BN-ReLU, global
    average pool, fc 10; no convolution biases. The paper rounds the size to 0.8M
    parameters; the test derives the exact count.
    Options: ``num_classes``, ``drop_rate`` (0.2 in the paper without augmentation),
    ``bn_size``, ``compression``, ``in_channels``.
    """
    kwargs.setdefault("num_classes", 10)
    return _densenet("densenet_bc_100_12", small_inputs=True, **kwargs)
