"""ZFNet (Zeiler & Fergus, ECCV 2014): the network of the paper's Figure 3.

An AlexNet revised with the help of deconvnet visualisations: a smaller first-layer
filter (7x7, stride 2 instead of 11x11, stride 4), stride 2 in layer 2, and dense
(ungrouped) connections in layers 3-5 because it was trained on one GPU. Attribute
names follow torchvision's AlexNet (``features``, ``classifier``) so the two compare
layer by layer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

PAPER = "Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014"


class ZFNet(nn.Module):
    """ZFNet: five conv layers (two followed by max pool + contrast normalisation) and three FC layers."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        # The figure gives kernels, strides and map sizes but no paddings; these are the
        # paddings that reproduce its sizes from a 224x224 crop:
        # 224 -> 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 13 -> 6.
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=7, stride=2, padding=1),  # 110
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),  # 55
            # "contrast normalized across feature maps": the paper gives no constants,
            # so AlexNet's local response normalisation (n=5, alpha=1e-4, beta=0.75, k=2).
            nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(96, 256, kernel_size=5, stride=2),  # 26
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),  # 13
            nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),  # 13
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),  # 13
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),  # 13
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 6
        )
        self.classifier = nn.Sequential(
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # N x 256 x 6 x 6
        x = torch.flatten(x, 1)
        return self.classifier(x)


def _zfnet(*, num_classes: int = 1000, dropout: float = 0.5) -> ZFNet:
    return ZFNet(num_classes=num_classes, dropout=dropout)


@register_model(family="ZFNet", paper=PAPER, year=2014, input_size=(3, 224, 224))
def zfnet(**kwargs: Any) -> nn.Module:
    """ZFNet (Zeiler & Fergus 2014), the paper's Figure 3; 3x224x224, ImageNet.

    conv1 96 7x7/2 -> ReLU -> max pool 3x3/2 -> contrast norm (55x55); conv2 256 5x5/2 ->
    ReLU -> max pool 3x3/2 -> contrast norm (13x13); conv3 384, conv4 384, conv5 256
    (3x3/1) -> max pool 3x3/2 (6x6); fc6 4096, fc7 4096 (dropout 0.5, Section 3), fc8
    1000. 62,357,608 parameters (derived layer by layer in the tests; the paper
    publishes no count).

    Options: ``num_classes`` (1000), ``dropout`` (0.5).

    Choices where the paper is silent: paddings (conv1 1, pool1 1, conv2 0, pool2 1,
    conv3-5 1, pool5 0) are the ones that reproduce Figure 3's map sizes 110, 55, 26,
    13, 13, 13, 6; the contrast normalisation is AlexNet's LRN (size 5, alpha 1e-4,
    beta 0.75, k 2). No other departure.
    """
    return _zfnet(**kwargs)
