"""HRNetV2 for image classification (HRNetV2-Wn-C).

Wang et al., Deep High-Resolution Representation Learning for Visual Recognition,
TPAMI 2020 (arXiv 1908.07919); classification head as in the official
HRNet/HRNet-Image-Classification ``lib/models/cls_hrnet.py``, which timm's
``timm/models/hrnet.py`` copies. Module names follow timm.

Layout at 3 x 224 x 224 (C = width: 18, 32, 48):

    stem          two 3x3 stride-2 convs (64 ch)                      -> 64 x 56 x 56
    layer1        4 bottlenecks (64 -> 256)                           -> 256 x 56 x 56
    transition1   3x3 convs: 256 -> C (56x56), 256 -> 2C stride 2 (28x28)
    stage2        1 module, 2 branches, 4 basic blocks per branch, then fuse
    transition2   new branch: 3x3 stride-2 conv 2C -> 4C (14x14)
    stage3        4 modules, 3 branches
    transition3   new branch: 3x3 stride-2 conv 4C -> 8C (7x7)
    stage4        3 modules, 4 branches (C, 2C, 4C, 8C)
    head          bottleneck per branch to 128/256/512/1024 ch ("incre"), strided 3x3
                  convs adding each resolution into the next, 1x1 conv to 2048,
                  global average pool, fc 1000

Fusion (the exchange units): branch j reaches branch i by a 1x1 conv + BN + nearest
upsampling when j is lower resolution (j > i), by i - j strided 3x3 convs when j is
higher resolution, and by identity when j == i; the terms are summed and ReLU'd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = [
    "HighResolutionNet",
    "HighResolutionModule",
    "BasicBlock",
    "Bottleneck",
    "StageConfig",
    "HRNetConfig",
    "hrnet_config",
    "hrnetv2_w18",
    "hrnetv2_w32",
    "hrnetv2_w48",
]

PAPER = (
    "Wang et al., Deep High-Resolution Representation Learning for Visual Recognition, "
    "TPAMI 2020"
)

# The exact counts come from osmr/imgclsmob (pytorch/pytorchcv/models/hrnet.py, whose
# _test() asserts them for weights converted from HRNet/HRNet-Image-Classification) and
# agree with that repository's README (21.3M / 41.2M / 77.5M) and, for W18, with the
# "Total Parameters: 21,299,004" printed by the official code's model summary.
_REF_SOURCE = (
    "osmr/imgclsmob pytorchcv hrnetv2_w{w} weight count (weights converted from "
    "HRNet/HRNet-Image-Classification; README: {r})"
)


@dataclass(frozen=True)
class StageConfig:
    """One stage: ``num_modules`` repeated multi-resolution modules."""

    num_modules: int  # HighResolutionModules in the stage
    block: str  # "basic" | "bottleneck"
    num_blocks: tuple[int, ...]  # residual blocks per branch
    num_channels: tuple[int, ...]  # block width per branch (x4 for bottleneck output)

    @property
    def num_branches(self) -> int:
        return len(self.num_channels)


@dataclass(frozen=True)
class HRNetConfig:
    """A full network: stem width and the four stages."""

    stem_width: int
    stages: tuple[StageConfig, StageConfig, StageConfig, StageConfig]
    head_channels: tuple[int, ...] = (32, 64, 128, 256)  # x4 (bottleneck) = 128..1024
    num_features: int = 2048  # final 1x1 conv width before the classifier


def hrnet_config(width: int) -> HRNetConfig:
    """The published HRNetV2-W{width} table: only the branch widths change with ``width``."""
    c = width
    return HRNetConfig(
        stem_width=64,
        stages=(
            StageConfig(1, "bottleneck", (4,), (64,)),
            StageConfig(1, "basic", (4, 4), (c, 2 * c)),
            StageConfig(4, "basic", (4, 4, 4), (c, 2 * c, 4 * c)),
            StageConfig(3, "basic", (4, 4, 4, 4), (c, 2 * c, 4 * c, 8 * c)),
        ),
    )


_CONFIGS: dict[str, HRNetConfig] = {
    "hrnetv2_w18": hrnet_config(18),
    "hrnetv2_w32": hrnet_config(32),
    "hrnetv2_w48": hrnet_config(48),
}


def _conv_bn(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, relu: bool = True,
             bias: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias),
        nn.BatchNorm2d(out_ch),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs), as in cls_hrnet.py / timm."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act2(out + shortcut)


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1, 3x3, 1x1 x4), as in cls_hrnet.py / timm."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.act3 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act3(out + shortcut)


_BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


def _make_layer(block: type[BasicBlock] | type[Bottleneck], inplanes: int, planes: int,
                num_blocks: int, stride: int = 1) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, 1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * block.expansion),
        )
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of residual blocks followed by the all-to-all fusion.

    Takes and returns a list of tensors, one per resolution (highest first).
    ``fuse_layers[i][j]`` brings branch j to branch i; the diagonal is an ``nn.Identity``
    placeholder (kept for timm's indices) that forward() does not call.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], num_blocks: tuple[int, ...],
                 in_channels: list[int], num_channels: tuple[int, ...]) -> None:
        super().__init__()
        self.num_branches = len(num_channels)
        self.branches = nn.ModuleList(
            _make_layer(block, in_channels[i], num_channels[i], num_blocks[i])
            for i in range(self.num_branches)
        )
        self.out_channels = [c * block.expansion for c in num_channels]
        self.fuse_layers = self._make_fuse_layers() if self.num_branches > 1 else None
        self.fuse_act = nn.ReLU(inplace=False)

    def _make_fuse_layers(self) -> nn.ModuleList:
        ch = self.out_channels
        fuse_layers = nn.ModuleList()
        for i in range(self.num_branches):
            row = nn.ModuleList()
            for j in range(self.num_branches):
                if j > i:
                    row.append(nn.Sequential(
                        nn.Conv2d(ch[j], ch[i], 1, bias=False),
                        nn.BatchNorm2d(ch[i]),
                        nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                    ))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    # i - j stride-2 3x3 convs; only the last changes the width and it has
                    # no ReLU (the sum is ReLU'd after fusion).
                    steps = [_conv_bn(ch[j], ch[j], 3, stride=2) for _ in range(i - j - 1)]
                    steps.append(_conv_bn(ch[j], ch[i], 3, stride=2, relu=False))
                    row.append(nn.Sequential(*steps))
            fuse_layers.append(row)
        return fuse_layers

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[i]
            for j, fuse in enumerate(row):
                if j != i:
                    y = y + fuse(xs[j])
            out.append(self.fuse_act(y))
        return out


class HighResolutionNet(nn.Module):
    """HRNetV2 backbone with the classification head of HRNet-Image-Classification."""

    def __init__(self, cfg: HRNetConfig, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        stem = cfg.stem_width
        self.conv1 = nn.Conv2d(in_channels, stem, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(stem, 64, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.act2 = nn.ReLU(inplace=True)

        s1, s2, s3, s4 = cfg.stages
        block1 = _BLOCKS[s1.block]
        self.layer1 = _make_layer(block1, 64, s1.num_channels[0], s1.num_blocks[0])
        channels = [s1.num_channels[0] * block1.expansion]

        self.transition1, self.stage2, channels = self._transition_and_stage(channels, s2)
        self.transition2, self.stage3, channels = self._transition_and_stage(channels, s3)
        self.transition3, self.stage4, channels = self._transition_and_stage(channels, s4)

        # Head: each resolution widened by one bottleneck, then merged from high to low
        # resolution by strided 3x3 convs (these convs have a bias in the reference code).
        head = [c * Bottleneck.expansion for c in cfg.head_channels]
        self.incre_modules = nn.ModuleList(
            _make_layer(Bottleneck, c_in, c_head, 1)
            for c_in, c_head in zip(channels, cfg.head_channels)
        )
        self.downsamp_modules = nn.ModuleList(
            _conv_bn(head[i], head[i + 1], 3, stride=2, bias=True) for i in range(len(head) - 1)
        )
        self.final_layer = _conv_bn(head[-1], cfg.num_features, 1, bias=True)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cfg.num_features, num_classes)

        for m in self.modules():
            # Meta tensors hold no values, and nn.init on meta costs ~7 ms per tensor
            # (hundreds of convs here), so the reference init runs on real devices only.
            if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) and m.weight.is_meta:
                continue
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _transition_and_stage(prev: list[int], cfg: StageConfig
                              ) -> tuple[nn.ModuleList, nn.Sequential, list[int]]:
        block = _BLOCKS[cfg.block]
        cur = [c * block.expansion for c in cfg.num_channels]
        transition = nn.ModuleList()
        for i, c in enumerate(cur):
            if i < len(prev):
                # Existing resolution: a 3x3 conv only where the width changes.
                transition.append(_conv_bn(prev[i], c, 3) if prev[i] != c else nn.Identity())
            else:
                # New lower resolution: stride-2 3x3 convs from the lowest existing branch.
                steps = [_conv_bn(prev[-1], prev[-1], 3, stride=2) for _ in range(i - len(prev))]
                steps.append(_conv_bn(prev[-1], c, 3, stride=2))
                transition.append(nn.Sequential(*steps))
        modules = []
        channels = cur
        for _ in range(cfg.num_modules):
            module = HighResolutionModule(block, cfg.num_blocks, channels, cfg.num_channels)
            modules.append(module)
            channels = module.out_channels
        return transition, nn.Sequential(*modules), channels

    @staticmethod
    def _apply_transition(transition: nn.ModuleList, xs: list[Tensor]) -> list[Tensor]:
        out = []
        for i, t in enumerate(transition):
            src = xs[i] if i < len(xs) else xs[-1]
            out.append(src if isinstance(t, nn.Identity) else t(src))
        return out

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        ys = self.stage2(self._apply_transition(self.transition1, [x]))
        ys = self.stage3(self._apply_transition(self.transition2, ys))
        ys = self.stage4(self._apply_transition(self.transition3, ys))
        y = self.incre_modules[0](ys[0])
        for i, down in enumerate(self.downsamp_modules):
            y = self.incre_modules[i + 1](ys[i + 1]) + down(y)
        return self.final_layer(y)

    def forward(self, x: Tensor) -> Tensor:
        x = self.forward_features(x)
        x = torch.flatten(self.global_pool(x), 1)
        return self.classifier(x)


def _hrnet(variant: str, **kwargs) -> HighResolutionNet:
    return HighResolutionNet(_CONFIGS[variant], **kwargs)


@register_model(family="HRNet", paper=PAPER, year=2020, input_size=(3, 224, 224),
                reference_params=21_299_004,
                reference_source=_REF_SOURCE.format(w=18, r="21.3M"))
def hrnetv2_w18(**kwargs) -> nn.Module:
    """HRNetV2-W18-C (Wang et al. 2020), ImageNet 3x224x224, branch widths 18/36/72/144.

    Options: ``num_classes=1000``, ``in_channels=3``. Same layers and parameter count
    as the official cls_hrnet.py and timm ``hrnet_w18``. Departures (none change the
    layers): the reference's shared ``relu`` module is split into named ``act1``,
    ``act2``... (timm's naming); its ``None`` entries in the transitions and on the
    fusion diagonal are ``nn.Identity`` placeholders that forward() does not call (timm
    calls them; neither holds parameters); timm's ``head_drop`` (rate 0 by default) is
    omitted.
    """
    return _hrnet("hrnetv2_w18", **kwargs)


@register_model(family="HRNet", paper=PAPER, year=2020, input_size=(3, 224, 224),
                reference_params=41_232_680,
                reference_source=_REF_SOURCE.format(w=32, r="41.2M"))
def hrnetv2_w32(**kwargs) -> nn.Module:
    """HRNetV2-W32-C (Wang et al. 2020), ImageNet 3x224x224, branch widths 32/64/128/256.

    Options: ``num_classes=1000``, ``in_channels=3``. Same layers and parameter count
    as the official cls_hrnet.py and timm ``hrnet_w32``. Departures (none change the
    layers): the reference's shared ``relu`` module is split into named ``act1``,
    ``act2``... (timm's naming); its ``None`` entries in the transitions and on the
    fusion diagonal are ``nn.Identity`` placeholders that forward() does not call (timm
    calls them; neither holds parameters); timm's ``head_drop`` (rate 0 by default) is
    omitted.
    """
    return _hrnet("hrnetv2_w32", **kwargs)


@register_model(family="HRNet", paper=PAPER, year=2020, input_size=(3, 224, 224),
                reference_params=77_469_864,
                reference_source=_REF_SOURCE.format(w=48, r="77.5M"))
def hrnetv2_w48(**kwargs) -> nn.Module:
    """HRNetV2-W48-C (Wang et al. 2020), ImageNet 3x224x224, branch widths 48/96/192/384.

    Options: ``num_classes=1000``, ``in_channels=3``. Same layers and parameter count
    as the official cls_hrnet.py and timm ``hrnet_w48``. Departures (none change the
    layers): the reference's shared ``relu`` module is split into named ``act1``,
    ``act2``... (timm's naming); its ``None`` entries in the transitions and on the
    fusion diagonal are ``nn.Identity`` placeholders that forward() does not call (timm
    calls them; neither holds parameters); timm's ``head_drop`` (rate 0 by default) is
    omitted.
    """
    return _hrnet("hrnetv2_w48", **kwargs)

