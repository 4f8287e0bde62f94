"""Competitive inner-imaging squeeze-and-excitation residual networks (CMPE-SE).

Hu, Wen, Luo, Dai, Ma, Yu, *Competitive Inner-Imaging Squeeze and Excitation for Residual
Network* (arXiv:1807.08920, 2018): the gate of each residual block is computed from the
squeezed residual branch *and* the squeezed identity, and rescales the residual branch.
The definition is the authors' MXNet code (github.com/scut-aitcm/Competitive-Inner-
Imaging-SENet): pre-activation CIFAR ResNet-164 and WRN-28-10 backbones. The plain SE
networks (Hu, Shen, Sun) are in ``senet.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = [
    "CompetitiveSE", "PreActCMPEBottleneck", "PreActCMPEBasicBlock", "CMPESEResNet",
    "CMPE_VARIANTS", "cmpe_se_resnet164", "cmpe_se_wrn28_10",
]

PAPER_CMPE = ("Hu, Wen, Luo, Dai, Ma, Yu, Competitive Inner-Imaging Squeeze and Excitation "
              "for Residual Network, arXiv:1807.08920, 2018")


# ------------------------------------------------------------------ competitive SE (CMPE)

# The gates of the CMPE paper and the authors' code, by option name:
#   "se"         plain SE on the residual branch (the authors' SE baseline, no fc bias)
#   "double_fc"  each squeeze gets its own fc (C -> C/r) + ReLU; the two are concatenated
#                and one fc (2C/r -> C) + sigmoid excites ("double FC squeezes")
#   "pair_1x1"   inner-imaging: the two squeezed vectors are laid side by side as a 1-channel
#                C x 2 "image", convolved by m 1x1 filters (+BN), averaged over the m maps,
#                flattened (2C) and excited by fc (2C -> C/r) + ReLU + fc (C/r -> C) + sigmoid
#   "pair_2x1"   the same with 1x2 filters, each seeing one channel's (residual, identity)
#                pair: the map is C x 1 and the first fc is C -> C/r ("pair-view")
#   "folded_3x3" the C x 2 image is folded into 2G rows of C/G values (G channel groups,
#                each contributing its residual row and its identity row) and convolved by
#                m 3x3 filters without padding before the same two fc layers
CMPE_VARIANTS = ("se", "double_fc", "pair_1x1", "pair_2x1", "folded_3x3")


class CompetitiveSE(nn.Module):
    """Competitive squeeze-excitation: a channel gate computed from the residual branch
    and the identity mapping jointly; it rescales the residual branch only.

    ``maps`` is the number of inner-imaging filters (m); ``fold_groups`` the number of
    channel groups G of the folded variant. All layers are bias-free as in the authors'
    MXNet code (``use_bias=False``), except the BN of the inner-imaging maps.
    """

    def __init__(self, channels: int, variant: str = "pair_2x1", reduction: int = 16,
                 maps: int = 1, fold_groups: int = 1) -> None:
        super().__init__()
        if variant not in CMPE_VARIANTS:
            raise ValueError(f"unknown CMPE-SE variant {variant!r}; choose from {CMPE_VARIANTS}")
        self.variant = variant
        self.channels = channels
        self.fold_groups = fold_groups
        hidden = channels // reduction
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.relu = nn.ReLU()
        self.sigmoid = nn.Sigmoid()
        if variant == "se":
            self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=False)
            self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=False)
        elif variant == "double_fc":
            self.fc_residual = nn.Conv2d(channels, hidden, kernel_size=1, bias=False)
            self.fc_identity = nn.Conv2d(channels, hidden, kernel_size=1, bias=False)
            self.fc = nn.Conv2d(2 * hidden, channels, kernel_size=1, bias=False)
        else:
            if variant == "pair_1x1":
                kernel, features = (1, 1), 2 * channels
            elif variant == "pair_2x1":
                kernel, features = (1, 2), channels
            else:
                if channels % fold_groups:
                    raise ValueError(f"{channels} channels do not fold into {fold_groups} groups")
                kernel = (3, 3)
                features = (2 * fold_groups - 2) * (channels // fold_groups - 2)
            self.conv = nn.Conv2d(1, maps, kernel_size=kernel, bias=False)
            self.bn = nn.BatchNorm2d(maps)
            self.fc1 = nn.Linear(features, hidden, bias=False)
            self.fc2 = nn.Linear(hidden, channels, bias=False)

    def forward(self, residual: Tensor, identity: Tensor) -> Tensor:
        """The rescaled residual branch (add the identity afterwards)."""
        if self.variant == "se":
            s = self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(residual)))))
            return residual * s
        if self.variant == "double_fc":
            r = self.relu(self.fc_residual(self.avg_pool(residual)))
            i = self.relu(self.fc_identity(self.avg_pool(identity)))
            s = self.sigmoid(self.fc(torch.cat([r, i], dim=1)))
            return residual * s
        n, c = residual.shape[0], self.channels
        # (N, C, 1, 1) squeezes become the two columns of a 1-channel C x 2 image.
        r = self.avg_pool(residual).reshape(n, 1, c, 1)
        i = self.avg_pool(identity).reshape(n, 1, c, 1)
        image = torch.cat([r, i], dim=3)
        if self.variant == "folded_3x3":
            g = self.fold_groups
            image = image.reshape(n, g, c // g, 2).transpose(2, 3).reshape(n, 1, 2 * g, c // g)
        maps = self.bn(self.conv(image))
        one_map = maps.mean(dim=1, keepdim=True)
        s = self.sigmoid(self.fc2(self.relu(self.fc1(torch.flatten(one_map, 1)))))
        return residual * s.reshape(n, c, 1, 1)


class PreActCMPEBottleneck(nn.Module):
    """Pre-activation bottleneck (BN-ReLU-conv 1x1, 3x3, 1x1 x4) with a competitive SE gate.

    The projection shortcut (where the shape changes) sees the pre-activated input, as in
    He et al.'s pre-activation ResNet and the authors' code.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, variant: str = "pair_2x1",
                 reduction: int = 16) -> None:
        super().__init__()
        out = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1,
                               bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, kernel_size=1, bias=False)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Conv2d(inplanes, out, kernel_size=1, stride=stride, bias=False)
        # The authors size the inner-imaging maps from the bottleneck width: planes / 16.
        self.se = CompetitiveSE(out, variant, reduction, maps=max(1, planes // 16),
                                fold_groups=out // 16)

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        identity = x if self.downsample is None else self.downsample(pre)
        return self.se(out, identity) + identity


class PreActCMPEBasicBlock(nn.Module):
    """Pre-activation wide basic block (BN-ReLU-conv 3x3, twice) with a competitive SE gate."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, variant: str = "pair_2x1",
                 reduction: int = 16, fold_groups: int = 10) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride,
                                        bias=False)
        self.se = CompetitiveSE(planes, variant, reduction, maps=max(1, planes // 16),
                                fold_groups=fold_groups)

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        identity = x if self.downsample is None else self.downsample(pre)
        return self.se(out, identity) + identity


class CMPESEResNet(nn.Module):
    """Pre-activation CIFAR ResNet with competitive SE blocks (the authors' MXNet layout).

    ``data_bn`` (a batch norm without affine parameters on the input: the Gluon idiom for
    input normalisation), a 3x3 conv to 16 channels, an optional BN after it (the WRN
    backbone has one), three stages at 32x32/16x16/8x8, BN-ReLU, global average pool, fc.
    """

    def __init__(self, block: str, layers: int, widths: tuple[int, int, int],
                 variant: str = "pair_2x1", reduction: int = 16, stem_bn: bool = False,
                 fold_groups: int = 10, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.data_bn = nn.BatchNorm2d(in_channels, affine=False)
        self.conv1 = nn.Conv2d(in_channels, 16, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16) if stem_bn else None
        inplanes = 16
        stages = []
        for i, width in enumerate(widths):
            blocks = []
            for j in range(layers):
                stride = 2 if (i > 0 and j == 0) else 1
                if block == "bottleneck":
                    blocks.append(PreActCMPEBottleneck(inplanes, width, stride, variant,
                                                       reduction))
                    inplanes = width * PreActCMPEBottleneck.expansion
                else:
                    blocks.append(PreActCMPEBasicBlock(inplanes, width, stride, variant,
                                                       reduction, fold_groups))
                    inplanes = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn = nn.BatchNorm2d(inplanes)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(self.data_bn(x))
        if self.bn1 is not None:
            x = self.bn1(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.avgpool(self.relu(self.bn(x)))
        return self.fc(torch.flatten(x, 1))


def _cmpe_resnet(depth: int = 164, **kwargs) -> CMPESEResNet:
    if (depth - 2) % 9:
        raise ValueError(f"a pre-activation bottleneck CIFAR ResNet has depth 9n+2, got {depth}")
    return CMPESEResNet("bottleneck", (depth - 2) // 9, (16, 32, 64), **kwargs)


def _cmpe_wrn(depth: int = 28, widen_factor: int = 10, **kwargs) -> CMPESEResNet:
    if (depth - 4) % 6:
        raise ValueError(f"a WRN has depth 6n+4, got {depth}")
    widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
    kwargs.setdefault("fold_groups", widen_factor)
    return CMPESEResNet("basic", (depth - 4) // 6, widths, stem_bn=True, **kwargs)


@register_model(family="CMPE-SENet", paper=PAPER_CMPE, year=2018, input_size=(3, 32, 32),
                num_classes=10, dataset="CIFAR-10")
def cmpe_se_resnet164(**kwargs) -> nn.Module:
    """CMPE-SE-ResNet-164 (Hu et al. 2018): pre-activation ResNet-164 with competitive SE.

    Input 3x32x32 (CIFAR-10), 10 classes. Backbone: He et al.'s pre-activation ResNet-164
    for CIFAR (depth 9n+2, n=18 bottlenecks per stage, bottleneck widths 16/32/64, outputs
    64/128/256), the backbone of the paper's ResNet experiments and of the authors' code;
    not the 6n+2 basic-block CIFAR ResNets. No published exact parameter count: the test
    derives it by arithmetic.

    The layer-level details below follow the authors' MXNet code (the paper text was not
    available to us; its figures describe the same blocks): the gate sees the residual
    branch after its last convolution and the identity after the
    projection shortcut where there is one; the inner-imaging maps (m = bottleneck width /
    16) are averaged before the fc layers; gate layers have no bias; ``data_bn`` (BN without
    affine parameters) normalises the input. The default gate is the 1x2 "pair-view"
    inner-imaging block (``variant="pair_2x1"``), which sees each channel's (residual,
    identity) pair jointly; the other gates the paper evaluates are selectable (see
    ``CMPE_VARIANTS``). Options: ``depth`` (9n+2), ``variant``, ``reduction`` (16),
    ``num_classes``, ``in_channels``.
    """
    return _cmpe_resnet(**kwargs)


@register_model(family="CMPE-SENet", paper=PAPER_CMPE, year=2018, input_size=(3, 32, 32),
                num_classes=10, dataset="CIFAR-10")
def cmpe_se_wrn28_10(**kwargs) -> nn.Module:
    """CMPE-SE-WRN-28-10 (Hu et al. 2018): WRN-28-10 with competitive SE in every block.

    Input 3x32x32 (CIFAR-10), 10 classes. Backbone: Zagoruyko & Komodakis' WRN-28-10
    (pre-activation basic blocks, widths 160/320/640, no dropout) as in the authors' code,
    which adds a BN after the stem convolution (the Gluon CIFAR WRN). The source table's
    3.58% / 18.47% CIFAR-10/100 errors for the competitive SE network are below its
    WRN-28-10 row (3.89% / 18.85%), which points to this backbone; which gate variant
    produced them is not verified here. No published exact parameter count: the test
    derives it.

    The layer-level details below follow the authors' MXNet code (the paper text was not
    available to us): the gate sees the residual branch after conv2 and the identity
    after the projection shortcut where there is one; the inner-imaging maps (m = width /
    16) are averaged before the fc layers; the folded variant folds each stage's channels
    into ``widen_factor`` groups; gate layers have no bias; ``data_bn`` normalises the
    input. Default gate: ``variant="pair_2x1"``. Options: ``depth`` (6n+4),
    ``widen_factor``, ``variant``, ``reduction``, ``fold_groups``, ``num_classes``,
    ``in_channels``.
    """
    return _cmpe_wrn(**kwargs)
