"""Residual Attention Network (Wang et al., CVPR 2017).

Stages of pre-activation bottleneck residual units interleaved with Attention Modules. An
Attention Module with hyper-parameters (p, t, r) runs p units, then splits:

* the trunk branch T(x): t residual units;
* the soft mask branch M(x): max pooling (3x3/2) and r units, repeated until the lowest
  resolution (where 2r units sit), then bilinear up-sampling back, each up-sampled map
  added to a skip connection (one residual unit on the down path's output at that
  resolution) and followed by r units; finally BN-ReLU-1x1 conv, BN-ReLU-1x1 conv,
  sigmoid;

combines them by attention residual learning, (1 + M(x)) * T(x), and runs p more units.
The number of pooling steps in a module's mask falls by one per stage (3, 2, 1 on
ImageNet at 56x56, 28x28, 14x14), so every mask bottoms out at 7x7.

The definition follows the paper's Table 2 and the authors' released Caffe models
(github.com/fwang91/residual-attention-network, ``Attention-56/92-deploy.prototxt``):
bias-free convolutions, projection shortcuts on the pre-activated input, skip connections
and up-sampling exactly as there. Departures: a sigmoid closes the mask as the paper says
(the released deploy files name a TanH layer there), and up-sampling is
``F.interpolate(..., mode="bilinear", align_corners=True)`` to the size of the skip tensor
(Caffe's Interp layer aligns corners too). Module names are ours: there is no torchvision
or timm model.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = ["PreActBottleneck", "AttentionModule", "ResidualAttentionNet",
           "residual_attention_56", "residual_attention_92", "residual_attention_92_cifar"]

PAPER = ("Wang et al., Residual Attention Network for Image Classification, CVPR 2017")


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck unit: (BN-ReLU-conv) 1x1, 3x3 (stride), 1x1; out/4 inside.

    A 1x1 projection of the pre-activated input replaces the identity where the channels
    or the resolution change (the Caffe models' ``branch2``).
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        mid = planes // 4
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, mid, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, planes, kernel_size=1, bias=False)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride,
                                        bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        identity = x if self.downsample is None else self.downsample(pre)
        return out + identity


def _units(channels: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[PreActBottleneck(channels, channels) for _ in range(n)])


class AttentionModule(nn.Module):
    """Attention Module: p pre units, trunk (t units) and soft mask, (1 + M) * T, p units.

    ``pools`` is the number of max-pool steps of the mask's bottom-up path (0: the mask is
    its 2r middle units at full resolution, as the CIFAR reference code's last stage).
    """

    def __init__(self, channels: int, pools: int, p: int = 1, t: int = 2, r: int = 1) -> None:
        super().__init__()
        self.pools = pools
        self.pre = _units(channels, p)
        self.trunk = _units(channels, t)
        # Bottom-up path: one (pool, r units) level per pooling step except the last, whose
        # 2r units are the middle of the hourglass; each level has a skip unit and an
        # up-path level of r units on the way back.
        levels = max(pools - 1, 0)
        self.mask_down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1), _units(channels, r))
            for _ in range(levels))
        self.mask_skip = nn.ModuleList(_units(channels, 1) for _ in range(levels))
        middle: list[nn.Module] = [nn.MaxPool2d(3, stride=2, padding=1)] if pools else []
        self.mask_middle = nn.Sequential(*middle, _units(channels, 2 * r))
        self.mask_up = nn.ModuleList(_units(channels, r) for _ in range(levels))
        self.mask_head = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=1, bias=False),
            nn.Sigmoid(),
        )
        self.post = _units(channels, p)

    def mask(self, x: Tensor) -> Tensor:
        """The soft mask M(x) in (0, 1), same shape as x."""
        downs, skips = [], []
        y = x
        for down, skip in zip(self.mask_down, self.mask_skip):
            y = down(y)
            downs.append(y)
            skips.append(skip(y))
        y = self.mask_middle(y)
        for level in reversed(range(len(downs))):
            y = F.interpolate(y, size=downs[level].shape[-2:], mode="bilinear",
                              align_corners=True)
            y = self.mask_up[level](y + skips[level])
        if self.pools:
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=True)
        return self.mask_head(y)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pre(x)
        trunk = self.trunk(x)
        out = (1 + self.mask(x)) * trunk
        return self.post(out)


class ResidualAttentionNet(nn.Module):
    """Stem, three stages of [residual unit, Attention Modules], a last stage of residual
    units, BN-ReLU, global average pool, fc.

    ``stages`` lists (channels, number of Attention Modules, mask pooling steps, stride of
    the stage's first unit); ``tail`` gives (channels, units, stride) of the last stage.
    ``stem`` is "imagenet" (7x7/2 conv, BN-ReLU, 3x3/2 max pool) or "cifar" (3x3 conv,
    BN-ReLU, no pooling).
    """

    def __init__(self, stages: Sequence[tuple[int, int, int, int]],
                 tail: tuple[int, int, int], stem: str = "imagenet", stem_channels: int = 64,
                 p: int = 1, t: int = 2, r: int = 1, num_classes: int = 1000,
                 in_channels: int = 3) -> None:
        super().__init__()
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, stem_channels, kernel_size=7, stride=2,
                                   padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        elif stem == "cifar":
            self.conv1 = nn.Conv2d(in_channels, stem_channels, kernel_size=3, padding=1,
                                   bias=False)
            self.maxpool = None
        else:
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.relu = nn.ReLU()
        inplanes = stem_channels
        layers = []
        for channels, modules, pools, stride in stages:
            blocks: list[nn.Module] = [PreActBottleneck(inplanes, channels, stride)]
            blocks += [AttentionModule(channels, pools, p, t, r) for _ in range(modules)]
            layers.append(nn.Sequential(*blocks))
            inplanes = channels
        channels, units, stride = tail
        blocks = [PreActBottleneck(inplanes, channels, stride)]
        blocks += [PreActBottleneck(channels, channels) for _ in range(units - 1)]
        layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.bn = nn.BatchNorm2d(channels)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(self.relu(self.bn(x)))
        return self.fc(torch.flatten(x, 1))


def _imagenet(modules: tuple[int, int, int], **kwargs) -> ResidualAttentionNet:
    # Table 2: 56x56 / 28x28 / 14x14 stages of 256 / 512 / 1024 channels, then three
    # 2048-channel units at 7x7.
    stages = [(256, modules[0], 3, 1), (512, modules[1], 2, 2), (1024, modules[2], 1, 2)]
    return ResidualAttentionNet(stages, (2048, 3, 2), stem="imagenet", **kwargs)


@register_model(family="Residual Attention Network", paper=PAPER, year=2017,
                reference_params=31_810_728,
                reference_source="osmr/imgclsmob resattnet56 model test (the same layer "
                                 "table as the authors' Attention-56-deploy.prototxt); the "
                                 "paper's Table 2 says 31.9M")
def residual_attention_56(**kwargs) -> nn.Module:
    """Attention-56 (Wang et al. 2017): one Attention Module per stage, (p, t, r) = (1, 2, 1).

    Input 3x224x224 (ImageNet), 1000 classes. Table 2 of the paper and the authors'
    Attention-56 Caffe model: 7x7/2 conv, 3x3/2 max pool, [unit, 1 Attention Module] at
    56x56 (256 ch), 28x28 (512) and 14x14 (1024), three 2048-channel units at 7x7, average
    pool, fc. The exact count (31,810,728) is 0.3% below the paper's 31.9M; the paper does
    not say how it counted (Caffe's BN layers also store running statistics). Mask: sigmoid
    as in the paper (the deploy file names TanH). Options: ``num_classes``,
    ``in_channels``, ``p``, ``t``, ``r``.
    """
    return _imagenet((1, 1, 1), **kwargs)


@register_model(family="Residual Attention Network", paper=PAPER, year=2017,
                reference_params=52_466_344,
                reference_source="osmr/imgclsmob resattnet92 model test (the same layer "
                                 "table as the authors' Attention-92-deploy.prototxt); the "
                                 "paper's Table 2 says 51.3M")
def residual_attention_92(**kwargs) -> nn.Module:
    """Attention-92 (Wang et al. 2017): 1, 2 and 3 Attention Modules in stages 1-3.

    Input 3x224x224 (ImageNet), 1000 classes. Table 2 and the authors' Attention-92 Caffe
    model (the same as Attention-56 with two more modules at 28x28 and 14x14). The exact
    count, 52,466,344, is 2.3% above the paper's 51.3M: the released model has exactly
    this layer table (six modules, three 2048-channel units), so the paper's figure does not
    follow from it; we trust the released model. Options: ``num_classes``, ``in_channels``,
    ``p``, ``t``, ``r``.
    """
    return _imagenet((1, 2, 3), **kwargs)


@register_model(family="Residual Attention Network", paper=PAPER, year=2017,
                input_size=(3, 32, 32), num_classes=10, dataset="CIFAR-10")
def residual_attention_92_cifar(**kwargs) -> nn.Module:
    """Attention-92 for CIFAR-10 (32x32 crops of 40x40 padded images), 10 classes.

    The paper gives no CIFAR layer table (its CIFAR networks are only named by depth), so
    this follows the widely used reference implementation
    (tengshaofeng/ResidualAttentionNetwork-pytorch, ``ResidualAttentionModel_92_32input_
    update``): 3x3 conv to 32 channels without pooling, [unit, 1/2/3 Attention Modules] at
    32x32 (128 ch), 16x16 (256) and 8x8 (512) with 2, 1 and 0 mask pooling steps, three
    1024-channel units at 8x8, average pool, fc. As in the authors' ImageNet models, each
    up-sampled mask map is added to its skip unit's output only (that code also adds the
    down path's output and, before the mask head, the trunk output: extra additions that
    change no parameter). No published parameter count: the test derives it by
    arithmetic. Options: ``num_classes``, ``in_channels``, ``p``, ``t``, ``r``.
    """
    kwargs.setdefault("num_classes", 10)
    stages = [(128, 1, 2, 1), (256, 2, 1, 2), (512, 3, 0, 2)]
    return ResidualAttentionNet(stages, (1024, 3, 1), stem="cifar", stem_channels=32,
                                **kwargs)
