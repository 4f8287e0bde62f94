"""Wide Residual Networks for CIFAR (Zagoruyko & Komodakis, BMVC 2016).

WRN-d-k: a 3x3 stem to 16 channels, three groups of (d - 4) / 6 pre-activation basic
blocks with 16k, 32k and 64k channels at 32x32, 16x16 and 8x8, then BN-ReLU, global
average pooling and a linear classifier. Dropout, when used, sits between the two 3x3
convolutions of a block. This follows the authors' PyTorch code
(github.com/szagoruyko/wide-residual-networks): bias-free convolutions, a 1x1 projection
shortcut on the pre-activated input wherever the width or resolution changes. The
ImageNet bottleneck WRN-50-2 is torchvision's ``wide_resnet50_2`` (resnet.py).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = ["WideBasicBlock", "WideResNet", "wrn28_10"]

PAPER = "Zagoruyko & Komodakis, Wide Residual Networks, BMVC 2016"


class WideBasicBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3x3, BN-ReLU-(dropout)-conv3x3, add."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride,
                                        bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu1(self.bn1(x))
        out = self.conv1(pre)
        out = self.relu2(self.bn2(out))
        if self.dropout is not None:
            out = self.dropout(out)
        out = self.conv2(out)
        # Where the shape changes the shortcut shares the block's pre-activation; it runs
        # after conv2, as in the authors' code (the convShortcut at the add).
        identity = x if self.downsample is None else self.downsample(pre)
        return out + identity


class WideResNet(nn.Module):
    """WRN-depth-widen_factor for 32x32 inputs."""

    def __init__(self, depth: int = 28, widen_factor: int = 10, dropout: float = 0.0,
                 num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=3, padding=1, bias=False)
        inplanes = widths[0]
        stages = []
        for i, planes in enumerate(widths[1:]):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(WideBasicBlock(inplanes, planes, stride, dropout))
                inplanes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn = nn.BatchNorm2d(inplanes)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.avgpool(self.relu(self.bn(x)))
        return self.fc(torch.flatten(x, 1))


@register_model(family="Wide ResNet", paper=PAPER, year=2016, input_size=(3, 32, 32),
                num_classes=10, dataset="CIFAR-10", reference_params=36_479_194,
                reference_source="osmr/imgclsmob wrn28_10_cifar10 parameter count (its model "
                                 "test and pretrained-model table); the paper's Table 6 "
                                 "rounds it to 36.5M")
def wrn28_10(**kwargs) -> nn.Module:
    """WRN-28-10 (Zagoruyko & Komodakis 2016): 28 layers, widths 160/320/640, CIFAR.

    Input 3x32x32 (CIFAR-10), 10 classes. Four pre-activation basic blocks (B(3,3)) per
    group. ``dropout`` defaults to 0.0 (the paper's plain WRN-28-10); its dropout runs use
    0.3 between the two convolutions, and the source table's 3.89% / 18.85% CIFAR-10/100
    errors are, to our reading of the paper, that dropout run (not re-checked against the
    paper text here). Dropout adds no parameters. Follows the authors' code exactly: no
    convolution biases, 1x1 projection shortcuts in the first block of each group.
    Options: ``depth`` (6n+4), ``widen_factor``, ``dropout``, ``num_classes``,
    ``in_channels``.
    """
    return WideResNet(**kwargs)
