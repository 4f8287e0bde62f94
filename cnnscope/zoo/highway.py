"""Convolutional highway networks (Srivastava, Greff, Schmidhuber, NeurIPS 2015).

A highway layer computes y = H(x) * T(x) + x * (1 - T(x)) with H(x) = ReLU(conv(x)) and
the transform gate T(x) = sigmoid(conv_T(x)), both 3x3 convolutions with bias; T's bias
starts negative (-2) so that every layer begins close to carrying its input. Highway layers
keep the width, so each stage opens with a plain convolution that changes it.

The 19-layer CIFAR-10 network ("Highway B", the paper's Table 2: ~2.3M parameters) is the
authors' own ``examples/highways/cifar10-19layers/cifar10_network.prototxt``
(github.com/flukeskywalker/highway-networks), a FitNet-4-shaped net: dropout 0.2 on the
input, [conv 3x3 32, 4 highway 32], 2x2 max pool, dropout, [conv 80, 5 highway 80], pool,
dropout, [conv 128, 5 highway 128], 1x1 conv to 100 maps + ReLU, 8x8 average pool,
dropout, fc. Layers keep the prototxt's names (conv1..conv18, ip2). The prototxt's ``ip2``
has 100 outputs even in the CIFAR-10 file; we use ``num_classes`` (10).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = ["HighwayConv2d", "HighwayNet", "highway", "highway32"]

PAPER = "Srivastava, Greff, Schmidhuber, Training Very Deep Networks, NeurIPS 2015"


class HighwayConv2d(nn.Module):
    """Convolutional highway layer: ReLU(conv(x)) * T + x * (1 - T), T = sigmoid(gate(x))."""

    def __init__(self, channels: int, kernel_size: int = 3, gate_bias: float = -2.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.relu = nn.ReLU()
        self.gate = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.sigmoid = nn.Sigmoid()
        self.gate_bias = gate_bias
        # Negative transform bias: every layer starts by mostly carrying its input.
        nn.init.constant_(self.gate.bias, gate_bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.relu(self.conv(x))
        t = self.sigmoid(self.gate(x))
        return h * t + x * (1 - t)


class HighwayNet(nn.Module):
    """[plain 3x3 conv + ReLU, highway layers] per stage, 2x2 max pools between stages,
    1x1 conv + ReLU, global average pool, fc; dropout on the input, after each pool and
    before the fc (the authors' prototxt)."""

    def __init__(self, stages: Sequence[tuple[int, int]], head_channels: int = 100,
                 dropout: float = 0.2, gate_bias: float = -2.0, num_classes: int = 10,
                 in_channels: int = 3) -> None:
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        n = 0  # the prototxt numbers convolution layers, plain and highway alike
        inplanes = in_channels
        for i, (width, highways) in enumerate(stages):
            if i > 0:
                layers.append((f"pool{i}", nn.MaxPool2d(2, stride=2)))
            if dropout > 0:
                layers.append((f"drop{i + 1}", nn.Dropout(dropout)))
            n += 1
            layers.append((f"conv{n}", nn.Conv2d(inplanes, width, 3, padding=1)))
            layers.append((f"relu{n}", nn.ReLU()))
            for _ in range(highways):
                n += 1
                layers.append((f"conv{n}", HighwayConv2d(width, 3, gate_bias)))
            inplanes = width
        n += 1
        layers.append((f"conv{n}", nn.Conv2d(inplanes, head_channels, kernel_size=1)))
        layers.append(("relu", nn.ReLU()))
        layers.append((f"pool{len(stages)}", nn.AdaptiveAvgPool2d(1)))
        if dropout > 0:
            layers.append((f"drop{len(stages) + 1}", nn.Dropout(dropout)))
        self.features = nn.Sequential(OrderedDict(layers))
        self.ip2 = nn.Linear(head_channels, num_classes)

        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, HighwayConv2d):
                # The loop above zeroed the gate biases too: restore the negative start.
                nn.init.constant_(m.gate.bias, m.gate_bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.ip2(torch.flatten(self.features(x), 1))


# (width, highway layers) per stage.
HIGHWAY_19 = ((32, 4), (80, 5), (128, 5))
HIGHWAY_32 = ((32, 9), (48, 9), (64, 9))


@register_model(family="Highway Network", paper=PAPER, year=2015, input_size=(3, 32, 32),
                num_classes=10, dataset="CIFAR-10")
def highway(**kwargs) -> nn.Module:
    """19-layer convolutional highway network for CIFAR-10 (Srivastava et al. 2015).

    Input 3x32x32 (CIFAR-10), 10 classes. The authors' released 19-layer CIFAR-10 network
    (the paper's "Highway B", built on Fitnet B): 3 plain + 14 highway 3x3 layers
    (widths 32/80/128), a 1x1 conv and the classifier; gate bias -2, dropout 0.2. Its
    2,256,838 parameters round to the paper's ~2.3M. Options: ``dropout``, ``gate_bias``,
    ``head_channels``, ``num_classes``, ``in_channels``.
    """
    return HighwayNet(HIGHWAY_19, **kwargs)


@register_model(family="Highway Network", paper=PAPER, year=2015, input_size=(3, 32, 32),
                num_classes=10, dataset="CIFAR-10")
def highway32(**kwargs) -> nn.Module:
    """32-layer convolutional highway network for CIFAR-10 (Srivastava et al. 2015).

    Input 3x32x32 (CIFAR-10), 10 classes. The paper's "Highway C" (32 layers, ~1.25M
    parameters, Table 2) is given only by depth and size, and the authors released only the
    19-layer net. Our reconstruction keeps the released 19-layer template and makes it
    deeper and thinner: 3 plain + 27 highway layers (9 per stage) of widths 32/48/64,
    a 1x1 conv to 100 maps and the classifier: 1 + 9 + 1 + 9 + 1 + 9 + 1 + 1 = 32 layers.
    The widths are our choice, picked so that the count (1,255,270) lands within 0.5% of
    the paper's ~1.25M; treat per-layer numbers of this model as a reconstruction.
    Options: ``dropout``, ``gate_bias``, ``head_channels``, ``num_classes``,
    ``in_channels``.
    """
    return HighwayNet(HIGHWAY_32, **kwargs)
