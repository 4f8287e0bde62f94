"""ResNet (He et al. 2016) and its wide and grouped descendants, torchvision's definition.

torchvision's bottleneck puts the stride-2 downsampling in the 3x3 convolution ("ResNet
V1.5", from fb.resnet.torch); the paper and the authors' Caffe models put it in the first
1x1 convolution. Both place the same weights, so parameter counts are identical, but V1
computes the 3x3 on the already-downsampled map and needs fewer multiply-adds: the paper's
Table 1 FLOPs (3.8, 7.6, 11.3 x 10^9) are those of V1, registered as ``resnet50_v1``,
``resnet101_v1`` and ``resnet152_v1``. Module names are torchvision's.
"""

from __future__ import annotations

from typing import Optional, Type, Union

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "RESNET_LAYERS",
           "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "resnet50_v1", "resnet101_v1", "resnet152_v1",
           "wide_resnet50_2", "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d"]

PAPER = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016"
PAPER_WIDE = "Zagoruyko & Komodakis, Wide Residual Networks, BMVC 2016"
PAPER_RESNEXT = ("Xie et al., Aggregated Residual Transformations for Deep Neural Networks, "
                 "CVPR 2017")

# Blocks per stage (conv2_x .. conv5_x), Table 1 of the paper.
RESNET_LAYERS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}

# Width and cardinality of the variants: (groups, width_per_group). The bottleneck's 3x3
# has planes * width_per_group / 64 * groups channels (64 * 4 / 64 * 32 = 128 for 32x4d).
WIDE_RESNET_WIDTH = (1, 64 * 2)
RESNEXT_32X4D = (32, 4)
RESNEXT_32X8D = (32, 8)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1, no bias (batch norm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1,
                     groups=groups, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and an identity (or projection) shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None, groups: int = 1,
                 base_width: int = 64, stride_in_1x1: bool = False) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if stride_in_1x1:
            raise ValueError("stride_in_1x1 needs bottleneck blocks: BasicBlock has no 1x1")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) and a shortcut (ResNet-50/101/152, ResNeXt, WRN).

    ``stride_in_1x1`` puts the stride on conv1 (the paper, V1) instead of conv2 (V1.5).
    ``groups`` and ``base_width`` widen the 3x3 to ``planes * base_width / 64 * groups``
    channels split into ``groups`` groups (ResNeXt's cardinality, WRN's width).
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None, groups: int = 1,
                 base_width: int = 64, stride_in_1x1: bool = False) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        stride1, stride2 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(inplanes, width, stride1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride2, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        # After bn3, as torchvision runs it: rows come out in the reference order.
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


Block = Type[Union[BasicBlock, Bottleneck]]


class ResNet(nn.Module):
    """7x7/2 stem, 3x3/2 max pool, four stages of residual blocks, average pool, fc."""

    def __init__(self, block: Block, layers: tuple[int, int, int, int] | list[int],
                 num_classes: int = 1000, zero_init_residual: bool = False, groups: int = 1,
                 width_per_group: int = 64, stride_in_1x1: bool = False,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.inplanes = 64
        self.groups = groups
        self.base_width = width_per_group
        self.stride_in_1x1 = stride_in_1x1
        self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            # Each residual branch starts as zero, each block as an identity (Goyal et al.).
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block: Block, planes: int, blocks: int,
                    stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            # Projection shortcut (the paper's option B) where the shape changes.
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, self.groups,
                        self.base_width, self.stride_in_1x1)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups,
                                base_width=self.base_width, stride_in_1x1=self.stride_in_1x1))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


def _resnet(block: Block, layers: tuple[int, int, int, int], *, groups: int = 1,
            width_per_group: int = 64, stride_in_1x1: bool = False, **kwargs) -> ResNet:
    return ResNet(block, layers, groups=groups, width_per_group=width_per_group,
                  stride_in_1x1=stride_in_1x1, **kwargs)


def _fixed(kwargs: dict, **values) -> dict:
    # A variant's defining values (groups, width) cannot be overridden by the caller.
    for key, value in values.items():
        if key in kwargs and kwargs[key] != value:
            raise ValueError(f"this model fixes {key}={value}; got {kwargs[key]}")
        kwargs[key] = value
    return kwargs


def _ref(name: str) -> str:
    return f"torchvision {name}_Weights.IMAGENET1K_V1 meta num_params"


@register_model(family="ResNet", paper=PAPER, year=2016, reference_params=11_689_512,
                reference_source=_ref("ResNet18"))
def resnet18(**kwargs) -> nn.Module:
    """ResNet-18 (He et al. 2016): basic blocks [2, 2, 2, 2].

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's definition, which is the paper's
    (projection shortcuts where the shape changes, option B). Options: ``num_classes``,
    ``zero_init_residual``, ``in_channels``.
    """
    return _resnet(BasicBlock, RESNET_LAYERS[18], **kwargs)


@register_model(family="ResNet", paper=PAPER, year=2016, reference_params=21_797_672,
                reference_source=_ref("ResNet34"))
def resnet34(**kwargs) -> nn.Module:
    """ResNet-34 (He et al. 2016): basic blocks [3, 4, 6, 3].

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's definition, which is the paper's
    (projection shortcuts where the shape changes, option B). Options: ``num_classes``,
    ``zero_init_residual``, ``in_channels``.
    """
    return _resnet(BasicBlock, RESNET_LAYERS[34], **kwargs)


@register_model(family="ResNet", paper=PAPER, year=2016, reference_params=25_557_032,
                reference_source=_ref("ResNet50"))
def resnet50(**kwargs) -> nn.Module:
    """ResNet-50 (He et al. 2016), torchvision's V1.5: bottleneck blocks [3, 4, 6, 3].

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's "V1.5" bottleneck: the stride 2
    of the first block of conv3_x..conv5_x is in the 3x3 convolution, not in the first 1x1
    as in the paper (see the ``_v1`` variant: same parameters, fewer multiply-adds). Options:
    ``num_classes``, ``zero_init_residual``, ``in_channels``, ``stride_in_1x1``.
    """
    return _resnet(Bottleneck, RESNET_LAYERS[50], **kwargs)


@register_model(family="ResNet", paper=PAPER, year=2016, reference_params=44_549_160,
                reference_source=_ref("ResNet101"))
def resnet101(**kwargs) -> nn.Module:
    """ResNet-101 (He et al. 2016), torchvision's V1.5: bottleneck blocks [3, 4, 23, 3].

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's "V1.5" bottleneck: the stride 2
    of the first block of conv3_x..conv5_x is in the 3x3 convolution, not in the first 1x1
    as in the paper (see the ``_v1`` variant: same parameters, fewer multiply-adds). Options:
    ``num_classes``, ``zero_init_residual``, ``in_channels``, ``stride_in_1x1``.
    """
    return _resnet(Bottleneck, RESNET_LAYERS[101], **kwargs)


@register_model(family="ResNet", paper=PAPER, year=2016, reference_params=60_192_808,
                reference_source=_ref("ResNet152"))
def resnet152(**kwargs) -> nn.Module:
    """ResNet-152 (He et al. 2016), torchvision's V1.5: bottleneck blocks [3, 8, 36, 3].

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's "V1.5" bottleneck: the stride 2
    of the first block of conv3_x..conv5_x is in the 3x3 convolution, not in the first 1x1
    as in the paper (see the ``_v1`` variant: same parameters, fewer multiply-adds). Options:
    ``num_classes``, ``zero_init_residual``, ``in_channels``, ``stride_in_1x1``.
    """
    return _resnet(Bottleneck, RESNET_LAYERS[152], **kwargs)


@register_model(family="ResNet", paper=PAPER, year=2016, reference_params=25_557_032,
                reference_source=_ref("ResNet50") + " (stride placement does not change it)")
def resnet50_v1(**kwargs) -> nn.Module:
    """ResNet-50 as in the paper (V1, stride in the first 1x1): 3.8 x 10^9 multiply-adds.

    Input 3x224x224 (ImageNet), 1000 classes. The paper's placement of the stride: the
    first 1x1 convolution of the first block of conv3_x..conv5_x has stride 2 (as in the
    authors' Caffe models); otherwise identical to torchvision's V1.5, with the same
    parameters. This is the model whose multiply-adds the paper's Table 1 reports.
    Options: ``num_classes``, ``zero_init_residual``, ``in_channels``.
    """
    return _resnet(Bottleneck, RESNET_LAYERS[50], **_fixed(kwargs, stride_in_1x1=True))


@register_model(family="ResNet", paper=PAPER, year=2016, reference_params=44_549_160,
                reference_source=_ref("ResNet101") + " (stride placement does not change it)")
def resnet101_v1(**kwargs) -> nn.Module:
    """ResNet-101 as in the paper (V1, stride in the first 1x1): 7.6 x 10^9 multiply-adds.

    Input 3x224x224 (ImageNet), 1000 classes. The paper's placement of the stride: the
    first 1x1 convolution of the first block of conv3_x..conv5_x has stride 2 (as in the
    authors' Caffe models); otherwise identical to torchvision's V1.5, with the same
    parameters. This is the model whose multiply-adds the paper's Table 1 reports.
    Options: ``num_classes``, ``zero_init_residual``, ``in_channels``.
    """
    return _resnet(Bottleneck, RESNET_LAYERS[101], **_fixed(kwargs, stride_in_1x1=True))


@register_model(family="ResNet", paper=PAPER, year=2016, reference_params=60_192_808,
                reference_source=_ref("ResNet152") + " (stride placement does not change it)")
def resnet152_v1(**kwargs) -> nn.Module:
    """ResNet-152 as in the paper (V1, stride in the first 1x1): 11.3 x 10^9 multiply-adds.

    Input 3x224x224 (ImageNet), 1000 classes. The paper's placement of the stride: the
    first 1x1 convolution of the first block of conv3_x..conv5_x has stride 2 (as in the
    authors' Caffe models); otherwise identical to torchvision's V1.5, with the same
    parameters. This is the model whose multiply-adds the paper's Table 1 reports.
    Options: ``num_classes``, ``zero_init_residual``, ``in_channels``.
    """
    return _resnet(Bottleneck, RESNET_LAYERS[152], **_fixed(kwargs, stride_in_1x1=True))


@register_model(family="Wide ResNet", paper=PAPER_WIDE, year=2016,
                reference_params=68_883_240, reference_source=_ref("Wide_ResNet50_2"))
def wide_resnet50_2(**kwargs) -> nn.Module:
    """Wide ResNet-50-2 (Zagoruyko & Komodakis 2016): ResNet-50 with 2x wider bottlenecks.

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's definition: ResNet (V1.5)
    with the bottleneck's inner 1x1/3x3 channels doubled (``width_per_group=128``) and the
    outer channels unchanged, e.g. 2048-1024-2048 in the last block. The WRN paper's
    ImageNet model WRN-50-2-bottleneck. Options: ``num_classes``, ``zero_init_residual``,
    ``in_channels``, ``stride_in_1x1``.
    """
    groups, width = WIDE_RESNET_WIDTH
    return _resnet(Bottleneck, RESNET_LAYERS[50],
                   **_fixed(kwargs, groups=groups, width_per_group=width))


@register_model(family="Wide ResNet", paper=PAPER_WIDE, year=2016,
                reference_params=126_886_696, reference_source=_ref("Wide_ResNet101_2"))
def wide_resnet101_2(**kwargs) -> nn.Module:
    """Wide ResNet-101-2 (Zagoruyko & Komodakis 2016): ResNet-101 with 2x wider bottlenecks.

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's definition: ResNet (V1.5)
    with the bottleneck's inner 1x1/3x3 channels doubled (``width_per_group=128``) and the
    outer channels unchanged, e.g. 2048-1024-2048 in the last block. The WRN paper's
    ImageNet model WRN-50-2-bottleneck. Options: ``num_classes``, ``zero_init_residual``,
    ``in_channels``, ``stride_in_1x1``.
    """
    groups, width = WIDE_RESNET_WIDTH
    return _resnet(Bottleneck, RESNET_LAYERS[101],
                   **_fixed(kwargs, groups=groups, width_per_group=width))


@register_model(family="ResNeXt", paper=PAPER_RESNEXT, year=2017,
                reference_params=25_028_904, reference_source=_ref("ResNeXt50_32X4D"))
def resnext50_32x4d(**kwargs) -> nn.Module:
    """ResNeXt-50 32x4d (Xie et al. 2017): cardinality 32, bottleneck width 4 per group.

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's definition, which is the
    paper's form (c) (grouped 3x3 convolution) with the stride in the 3x3 like the paper's
    fb.resnet.torch code. Options: ``num_classes``, ``zero_init_residual``,
    ``in_channels``, ``stride_in_1x1``.
    """
    groups, width = RESNEXT_32X4D
    return _resnet(Bottleneck, RESNET_LAYERS[50],
                   **_fixed(kwargs, groups=groups, width_per_group=width))


@register_model(family="ResNeXt", paper=PAPER_RESNEXT, year=2017,
                reference_params=88_791_336, reference_source=_ref("ResNeXt101_32X8D"))
def resnext101_32x8d(**kwargs) -> nn.Module:
    """ResNeXt-101 32x8d (Xie et al. 2017): cardinality 32, bottleneck width 8 per group.

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's definition, which is the
    paper's form (c) (grouped 3x3 convolution) with the stride in the 3x3 like the paper's
    fb.resnet.torch code. Options: ``num_classes``, ``zero_init_residual``,
    ``in_channels``, ``stride_in_1x1``.
    """
    groups, width = RESNEXT_32X8D
    return _resnet(Bottleneck, RESNET_LAYERS[101],
                   **_fixed(kwargs, groups=groups, width_per_group=width))


