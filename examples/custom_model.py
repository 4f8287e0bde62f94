"""A model that lives in your own code, analysed without registering it anywhere.

    cnnscope params examples/custom_model.py:build --arg width=32
    cnnscope compare resnet18 examples/custom_model.py:build
    cnnscope snapshot examples/custom_model.py:build -o cnnscope.lock.json

cnnscope imports this file only because you named it, then calls ``build`` (with the
``--arg`` values as keyword arguments) on the meta device: no weights are allocated.
The ``input_size`` attribute gives the default input (otherwise 3x224x224).
"""

import torch
from torch import nn


class TinyNet(nn.Module):
    """Two 3x3 convolutions (the second with stride 2), global average pooling, a classifier.

    A CIFAR-sized toy: 32x32 RGB input, ``num_classes`` outputs; ``width`` is the number
    of channels of the first convolution (the second has twice as many).
    """

    def __init__(self, width: int = 16, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.fc(torch.flatten(x, 1))


def build(width: int = 16, num_classes: int = 10) -> TinyNet:
    """The factory cnnscope calls: ``--arg width=32`` becomes ``build(width=32)``."""
    return TinyNet(width=width, num_classes=num_classes)


build.input_size = (3, 32, 32)  # the default input for this factory (C, H, W)
