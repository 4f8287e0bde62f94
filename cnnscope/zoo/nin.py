"""Network In Network (Lin, Chen & Yan, ICLR 2014): mlpconv layers and global average pooling.

An mlpconv layer is a convolution followed by a small MLP shared across positions,
i.e. 1x1 convolutions ("cccp" layers in the authors' code), each with a ReLU. The
CIFAR-10 model stacks three of them and replaces the fully connected classifier by a
last mlpconv with one map per class, averaged over the image.

Layer settings follow the authors' CIFAR-10 model (Caffe model zoo ``cifar10_nin``
and mavenlin/cuda-convnet ``NIN/cifar-10_def``); attribute names are the authors'
(``conv1``, ``cccp1`` ...).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

PAPER = "Lin, Chen & Yan, Network In Network, ICLR 2014"


class MLPConv(nn.Sequential):
    """One mlpconv block: a k x k conv and two 1x1 convs ("cccp"), each followed by ReLU.

    Layers are named as in the authors' model: ``conv1``, ``relu1``, ``cccp1``,
    ``relu_cccp1``, ``cccp2``, ``relu_cccp2`` for the first block, and so on.
    """

    def __init__(self, index: int, in_channels: int, channels: tuple[int, int, int],
                 kernel_size: int) -> None:
        c0, c1, c2 = channels
        a, b = 2 * index - 1, 2 * index  # cccp numbering runs over the whole network
        super().__init__(OrderedDict([
            (f"conv{index}", nn.Conv2d(in_channels, c0, kernel_size, padding=kernel_size // 2)),
            (f"relu{index}", nn.ReLU(inplace=True)),
            (f"cccp{a}", nn.Conv2d(c0, c1, kernel_size=1)),
            (f"relu_cccp{a}", nn.ReLU(inplace=True)),
            (f"cccp{b}", nn.Conv2d(c1, c2, kernel_size=1)),
            (f"relu_cccp{b}", nn.ReLU(inplace=True)),
        ]))


class NIN(nn.Module):
    """NIN for CIFAR-10: three mlpconv blocks and global average pooling."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.5) -> None:
        super().__init__()
        # Pools round up (ceil_mode) as the authors' Caffe and cuda-convnet layers do:
        # 32 -> 16 -> 8, where floor rounding would give 32 -> 15 -> 7.
        self.block1 = MLPConv(1, 3, (192, 160, 96), kernel_size=5)  # 32x32
        self.pool1 = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)  # 16x16
        self.drop1 = nn.Dropout(p=dropout)
        self.block2 = MLPConv(2, 96, (192, 192, 192), kernel_size=5)
        self.pool2 = nn.AvgPool2d(kernel_size=3, stride=2, ceil_mode=True)  # 8x8
        self.drop2 = nn.Dropout(p=dropout)
        # The last cccp layer has one map per class and keeps its ReLU, as in the
        # authors' model; its global average is the class score.
        self.block3 = MLPConv(3, 192, (192, 192, num_classes), kernel_size=3)
        self.global_pool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = self.drop1(self.pool1(self.block1(x)))
        x = self.drop2(self.pool2(self.block2(x)))
        x = self.global_pool(self.block3(x))  # N x num_classes x 1 x 1
        return torch.flatten(x, 1)


def _nin(*, num_classes: int = 10, dropout: float = 0.5) -> NIN:
    return NIN(num_classes=num_classes, dropout=dropout)


@register_model(family="NIN", paper=PAPER, year=2014, input_size=(3, 32, 32), num_classes=10,
                dataset="CIFAR-10")
def nin(**kwargs: Any) -> nn.Module:
    """Network In Network (Lin et al. 2014), the authors' CIFAR-10 model; 3x32x32, CIFAR-10.

    mlpconv 1: conv 5x5 192, 1x1 160, 1x1 96, max pool 3x3/2, dropout 0.5;
    mlpconv 2: conv 5x5 192, 1x1 192, 1x1 192, avg pool 3x3/2, dropout 0.5;
    mlpconv 3: conv 3x3 192, 1x1 192, 1x1 ``num_classes``; global average pooling.
    Every conv has a bias and a ReLU. 966,986 parameters (derived layer by layer in the
    tests; the paper publishes no count).

    Options: ``num_classes`` (10; also the width of the last 1x1 conv, since global
    average pooling is the classifier), ``dropout`` (0.5).

    Departures / choices: the paper gives no layer table; settings are the authors'
    released CIFAR-10 model (Caffe model zoo ``cifar10_nin``, the one with 89.6%
    accuracy). Their earlier cuda-convnet definition (``NIN/cifar-10_def``) max-pools
    after mlpconv 2 where the released model average-pools; parameters are the same.
    Pools round their output size up (``ceil_mode=True``), as both frameworks do.
    """
    return _nin(**kwargs)
