"""Squeeze-and-Excitation networks (Hu, Shen, Sun, CVPR 2018).

SE-ResNet, SE-ResNeXt and SENet-154 on ImageNet. The definition is the authors' Caffe
models as ported by Cadene's ``pretrainedmodels`` and kept in timm as ``legacy_se*``
(``timm/models/senet.py``); module names are timm's (``layer0``, ``pool0``, ``layer1``..,
``se_module.fc1``, ``last_linear``). The competitive (CMPE) SE networks, another paper,
are in ``cmpe_senet.py``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Optional, Type, Union

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = [
    "SEModule", "SEResNetBottleneck", "SEResNeXtBottleneck", "SEBottleneck", "SENet",
    "se_resnet50", "se_resnet101", "se_resnet152", "se_resnext50_32x4d",
    "se_resnext101_32x4d", "senet154",
]

PAPER = "Hu, Shen, Sun, Squeeze-and-Excitation Networks, CVPR 2018"

# Bottleneck blocks per stage, as for ResNet (He et al. 2016, Table 1).
SE_LAYERS: dict[int, tuple[int, int, int, int]] = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}


# --------------------------------------------------------------------------- SE (Hu et al.)


class SEModule(nn.Module):
    """Squeeze (global average pool), excite (fc-ReLU-fc-sigmoid), rescale each channel.

    The two fully connected layers are 1x1 convolutions with bias, as in the authors'
    Caffe models and timm; ``reduction`` is the paper's r (16).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        s = self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))
        return x * s


class _SEBottleneckBase(nn.Module):
    """conv1-bn1-relu, conv2-bn2-relu, conv3-bn3, SE on the residual, add, relu."""

    expansion = 4

    def _build(self, inplanes: int, mid1: int, mid2: int, out: int, groups: int,
               reduction: int, stride1: int, stride2: int,
               downsample: Optional[nn.Module]) -> None:
        self.conv1 = nn.Conv2d(inplanes, mid1, kernel_size=1, stride=stride1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid1)
        self.conv2 = nn.Conv2d(mid1, mid2, kernel_size=3, stride=stride2, padding=1,
                               groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(mid2)
        self.conv3 = nn.Conv2d(mid2, out, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU()
        self.se_module = SEModule(out, reduction)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        # The reference (the authors' SENet, timm's legacy_seresnet) runs the projection
        # shortcut after bn3 and before the SE gate.
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.se_module(out)
        return self.relu(out + shortcut)


class SEResNetBottleneck(_SEBottleneckBase):
    """SE-ResNet bottleneck. The stride is in the first 1x1 (the authors' Caffe models,
    ResNet "V1"), not in the 3x3 as in torchvision's ResNet."""

    def __init__(self, inplanes: int, planes: int, groups: int, reduction: int,
                 stride: int = 1, downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self._build(inplanes, planes, planes, planes * 4, groups, reduction,
                    stride1=stride, stride2=1, downsample=downsample)


class SEResNeXtBottleneck(_SEBottleneckBase):
    """SE-ResNeXt bottleneck: 3x3 of ``floor(planes * base_width / 64) * groups`` channels
    in ``groups`` groups, stride in the 3x3."""

    def __init__(self, inplanes: int, planes: int, groups: int, reduction: int,
                 stride: int = 1, downsample: Optional[nn.Module] = None,
                 base_width: int = 4) -> None:
        super().__init__()
        width = math.floor(planes * (base_width / 64)) * groups
        self._build(inplanes, width, width, planes * 4, groups, reduction,
                    stride1=1, stride2=stride, downsample=downsample)


class SEBottleneck(_SEBottleneckBase):
    """SENet-154 bottleneck: 1x1 to ``2 * planes``, grouped 3x3 to ``4 * planes``."""

    def __init__(self, inplanes: int, planes: int, groups: int, reduction: int,
                 stride: int = 1, downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self._build(inplanes, planes * 2, planes * 4, planes * 4, groups, reduction,
                    stride1=1, stride2=stride, downsample=downsample)


SEBlock = Type[Union[SEResNetBottleneck, SEResNeXtBottleneck, SEBottleneck]]


class SENet(nn.Module):
    """layer0 stem, 3x3/2 max pool (ceil mode), four stages of SE bottlenecks, pool, fc.

    ``input_3x3`` replaces the 7x7 stem by three 3x3 convolutions (SENet-154);
    ``downsample_kernel_size``/``downsample_padding`` set the projection shortcut's
    kernel (3/1 in SENet-154, 1/0 elsewhere).
    """

    def __init__(self, block: SEBlock, layers: tuple[int, int, int, int] | list[int],
                 groups: int, reduction: int = 16, drop_rate: float = 0.0,
                 in_channels: int = 3, inplanes: int = 64, input_3x3: bool = False,
                 downsample_kernel_size: int = 1, downsample_padding: int = 0,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = inplanes
        if input_3x3:
            layer0 = [
                ("conv1", nn.Conv2d(in_channels, 64, 3, stride=2, padding=1, bias=False)),
                ("bn1", nn.BatchNorm2d(64)),
                ("relu1", nn.ReLU()),
                ("conv2", nn.Conv2d(64, 64, 3, stride=1, padding=1, bias=False)),
                ("bn2", nn.BatchNorm2d(64)),
                ("relu2", nn.ReLU()),
                ("conv3", nn.Conv2d(64, inplanes, 3, stride=1, padding=1, bias=False)),
                ("bn3", nn.BatchNorm2d(inplanes)),
                ("relu3", nn.ReLU()),
            ]
        else:
            layer0 = [
                ("conv1", nn.Conv2d(in_channels, inplanes, kernel_size=7, stride=2, padding=3,
                                    bias=False)),
                ("bn1", nn.BatchNorm2d(inplanes)),
                ("relu1", nn.ReLU()),
            ]
        self.layer0 = nn.Sequential(OrderedDict(layer0))
        # ceil_mode instead of padding=1 keeps the Caffe output size (56x56 at 224 input).
        self.pool0 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.layer1 = self._make_layer(block, 64, layers[0], groups, reduction)
        self.layer2 = self._make_layer(block, 128, layers[1], groups, reduction, stride=2,
                                       kernel=downsample_kernel_size, pad=downsample_padding)
        self.layer3 = self._make_layer(block, 256, layers[2], groups, reduction, stride=2,
                                       kernel=downsample_kernel_size, pad=downsample_padding)
        self.layer4 = self._make_layer(block, 512, layers[3], groups, reduction, stride=2,
                                       kernel=downsample_kernel_size, pad=downsample_padding)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else None
        self.last_linear = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: SEBlock, planes: int, blocks: int, groups: int,
                    reduction: int, stride: int = 1, kernel: int = 1,
                    pad: int = 0) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=kernel,
                          stride=stride, padding=pad, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, groups, reduction, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups, reduction))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool0(self.layer0(x))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = torch.flatten(self.global_pool(x), 1)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.last_linear(x)


def _senet(block: SEBlock, layers: tuple[int, int, int, int], groups: int, **kwargs) -> SENet:
    return SENet(block, layers, groups, **kwargs)


def _ref(name: str, timm_name: str) -> str:
    # The count of Cadene's pretrainedmodels port of the authors' Caffe models (timm keeps
    # the same definition as legacy_*); osmr/imgclsmob's model tests assert the same numbers.
    return (f"Cadene pretrainedmodels {name} (= timm {timm_name}) parameter count, "
            f"asserted in osmr/imgclsmob's model tests")


@register_model(family="SENet", paper=PAPER, year=2018, reference_params=28_088_024,
                reference_source=_ref("se_resnet50", "legacy_seresnet50"))
def se_resnet50(**kwargs) -> nn.Module:
    """SE-ResNet-50 (Hu et al. 2018): ResNet-50 with an SE gate (r=16) in every block.

    Input 3x224x224 (ImageNet), 1000 classes. The authors' definition (timm
    ``legacy_seresnet50``): the stride of the first block of stages 2-4 is in the first 1x1
    convolution, as in the original ResNet and the authors' Caffe models (torchvision's
    ResNet-50 has it in the 3x3; the parameters are the same). The SE fc layers have bias.
    The paper's Table reports 28.1M parameters. Options: ``num_classes``, ``in_channels``,
    ``reduction``, ``drop_rate`` (0: the SE-ResNets were trained without dropout).
    """
    return _senet(SEResNetBottleneck, SE_LAYERS[50], groups=1, **kwargs)


@register_model(family="SENet", paper=PAPER, year=2018, reference_params=49_326_872,
                reference_source=_ref("se_resnet101", "legacy_seresnet101"))
def se_resnet101(**kwargs) -> nn.Module:
    """SE-ResNet-101 (Hu et al. 2018): bottlenecks [3, 4, 23, 3] with SE gates (r=16).

    Input 3x224x224 (ImageNet), 1000 classes. Same definition as ``se_resnet50`` (stride
    in the first 1x1, timm ``legacy_seresnet101``). Options: ``num_classes``,
    ``in_channels``, ``reduction``, ``drop_rate``.
    """
    return _senet(SEResNetBottleneck, SE_LAYERS[101], groups=1, **kwargs)


@register_model(family="SENet", paper=PAPER, year=2018, reference_params=66_821_848,
                reference_source=_ref("se_resnet152", "legacy_seresnet152"))
def se_resnet152(**kwargs) -> nn.Module:
    """SE-ResNet-152 (Hu et al. 2018): bottlenecks [3, 8, 36, 3] with SE gates (r=16).

    Input 3x224x224 (ImageNet), 1000 classes. Same definition as ``se_resnet50`` (stride
    in the first 1x1, timm ``legacy_seresnet152``). Options: ``num_classes``,
    ``in_channels``, ``reduction``, ``drop_rate``.
    """
    return _senet(SEResNetBottleneck, SE_LAYERS[152], groups=1, **kwargs)


@register_model(family="SENet", paper=PAPER, year=2018, reference_params=27_559_896,
                reference_source=_ref("se_resnext50_32x4d", "legacy_seresnext50_32x4d"))
def se_resnext50_32x4d(**kwargs) -> nn.Module:
    """SE-ResNeXt-50 32x4d (Hu et al. 2018): ResNeXt-50 (32 groups of 4) with SE gates.

    Input 3x224x224 (ImageNet), 1000 classes. timm ``legacy_seresnext50_32x4d``: the
    3x3 has 128/256/512/1024 channels in 32 groups and carries the stride, as in ResNeXt.
    Options: ``num_classes``, ``in_channels``, ``reduction``, ``drop_rate``.
    """
    return _senet(SEResNeXtBottleneck, SE_LAYERS[50], groups=32, **kwargs)


@register_model(family="SENet", paper=PAPER, year=2018, reference_params=48_955_416,
                reference_source=_ref("se_resnext101_32x4d", "legacy_seresnext101_32x4d"))
def se_resnext101_32x4d(**kwargs) -> nn.Module:
    """SE-ResNeXt-101 32x4d (Hu et al. 2018): bottlenecks [3, 4, 23, 3], 32 groups of 4.

    Input 3x224x224 (ImageNet), 1000 classes. timm ``legacy_seresnext101_32x4d``.
    Options: ``num_classes``, ``in_channels``, ``reduction``, ``drop_rate``.
    """
    return _senet(SEResNeXtBottleneck, SE_LAYERS[101], groups=32, **kwargs)


@register_model(family="SENet", paper=PAPER, year=2018, reference_params=115_088_984,
                reference_source=_ref("senet154", "legacy_senet154"))
def senet154(**kwargs) -> nn.Module:
    """SENet-154 (Hu et al. 2018): the ILSVRC 2017 winner, a modified SE-ResNeXt-152 (64x4d).

    Input 3x224x224 (ImageNet; the paper also evaluates 320x320), 1000 classes. The
    authors' modifications (paper appendix): three 3x3 convolutions instead of the 7x7
    stem, 128 stem channels, bottlenecks whose first 1x1 has half the channels of the
    grouped 3x3 (64 groups), 3x3 projection shortcuts and dropout 0.2 before the
    classifier (timm ``legacy_senet154``). Options: ``num_classes``, ``in_channels``,
    ``reduction``, ``drop_rate`` (default 0.2).
    """
    kwargs.setdefault("drop_rate", 0.2)
    return _senet(SEBottleneck, SE_LAYERS[152], groups=64, inplanes=128, input_3x3=True,
                  downsample_kernel_size=3, downsample_padding=1, **kwargs)
