"""VGG (Simonyan & Zisserman 2014), torchvision's definition, which follows the paper.

Configurations A, B, D, E of the paper's Table 1 are data: a number is a 3x3 convolution
(stride 1, padding 1) with that many filters, "M" a 2x2/2 max pool. Module names are
torchvision's (``features.N``, ``avgpool``, ``classifier.N``) so per-layer rows compare.
"""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = ["VGG", "VGG_CFGS", "make_layers", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn",
           "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]

PAPER = ("Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image "
         "Recognition, ICLR 2015 (arXiv 2014)")

# Table 1 of the paper (A = 11, B = 13, D = 16, E = 19 weight layers).
VGG_CFGS: dict[str, tuple[Union[int, str], ...]] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"),
}


def make_layers(cfg: tuple[Union[int, str], ...], batch_norm: bool = False,
                in_channels: int = 3) -> nn.Sequential:
    """The convolutional trunk of one configuration (conv [-> BN] -> ReLU, pools)."""
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        conv = nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1)
        if batch_norm:
            layers += [conv, nn.BatchNorm2d(int(v)), nn.ReLU()]
        else:
            layers += [conv, nn.ReLU()]
        in_channels = int(v)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """Trunk, 7x7 adaptive average pool (torchvision's), three fully connected layers."""

    def __init__(self, features: nn.Module, num_classes: int = 1000, dropout: float = 0.5,
                 init_weights: bool = True) -> None:
        super().__init__()
        self.features = features
        # An identity at 224x224; torchvision adds it so other sizes reach the classifier.
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0.0, 0.01)
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def _vgg(cfg: str, batch_norm: bool, *, in_channels: int = 3, **kwargs) -> VGG:
    return VGG(make_layers(VGG_CFGS[cfg], batch_norm=batch_norm, in_channels=in_channels),
               **kwargs)


def _ref(name: str) -> str:
    return f"torchvision {name}_Weights.IMAGENET1K_V1 meta num_params"


@register_model(family="VGG", paper=PAPER, year=2014, reference_params=132_863_336,
                reference_source=_ref("VGG11"))
def vgg11(**kwargs) -> nn.Module:
    """VGG-11 (configuration A, Simonyan & Zisserman 2014).

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's definition: the paper's
    Table 1 plus a 7x7 adaptive average pool before the classifier (an identity at
    224x224). Options: ``num_classes``, ``dropout``, ``init_weights``, ``in_channels``.
    """
    return _vgg("A", False, **kwargs)


@register_model(family="VGG", paper=PAPER, year=2014, reference_params=132_868_840,
                reference_source=_ref("VGG11_BN"))
def vgg11_bn(**kwargs) -> nn.Module:
    """VGG-11 with batch norm (configuration A, torchvision's BN variant).

    Input 3x224x224 (ImageNet), 1000 classes. Batch norm after every convolution is
    torchvision's addition (the paper predates batch norm); otherwise as the plain model.
    Options: ``num_classes``, ``dropout``, ``init_weights``, ``in_channels``.
    """
    return _vgg("A", True, **kwargs)


@register_model(family="VGG", paper=PAPER, year=2014, reference_params=133_047_848,
                reference_source=_ref("VGG13"))
def vgg13(**kwargs) -> nn.Module:
    """VGG-13 (configuration B, Simonyan & Zisserman 2014).

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's definition: the paper's
    Table 1 plus a 7x7 adaptive average pool before the classifier (an identity at
    224x224). Options: ``num_classes``, ``dropout``, ``init_weights``, ``in_channels``.
    """
    return _vgg("B", False, **kwargs)


@register_model(family="VGG", paper=PAPER, year=2014, reference_params=133_053_736,
                reference_source=_ref("VGG13_BN"))
def vgg13_bn(**kwargs) -> nn.Module:
    """VGG-13 with batch norm (configuration B, torchvision's BN variant).

    Input 3x224x224 (ImageNet), 1000 classes. Batch norm after every convolution is
    torchvision's addition (the paper predates batch norm); otherwise as the plain model.
    Options: ``num_classes``, ``dropout``, ``init_weights``, ``in_channels``.
    """
    return _vgg("B", True, **kwargs)


@register_model(family="VGG", paper=PAPER, year=2014, reference_params=138_357_544,
                reference_source=_ref("VGG16"))
def vgg16(**kwargs) -> nn.Module:
    """VGG-16 (configuration D, Simonyan & Zisserman 2014).

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's definition: the paper's
    Table 1 plus a 7x7 adaptive average pool before the classifier (an identity at
    224x224). Options: ``num_classes``, ``dropout``, ``init_weights``, ``in_channels``.
    """
    return _vgg("D", False, **kwargs)


@register_model(family="VGG", paper=PAPER, year=2014, reference_params=138_365_992,
                reference_source=_ref("VGG16_BN"))
def vgg16_bn(**kwargs) -> nn.Module:
    """VGG-16 with batch norm (configuration D, torchvision's BN variant).

    Input 3x224x224 (ImageNet), 1000 classes. Batch norm after every convolution is
    torchvision's addition (the paper predates batch norm); otherwise as the plain model.
    Options: ``num_classes``, ``dropout``, ``init_weights``, ``in_channels``.
    """
    return _vgg("D", True, **kwargs)


@register_model(family="VGG", paper=PAPER, year=2014, reference_params=143_667_240,
                reference_source=_ref("VGG19"))
def vgg19(**kwargs) -> nn.Module:
    """VGG-19 (configuration E, Simonyan & Zisserman 2014).

    Input 3x224x224 (ImageNet), 1000 classes. torchvision's definition: the paper's
    Table 1 plus a 7x7 adaptive average pool before the classifier (an identity at
    224x224). Options: ``num_classes``, ``dropout``, ``init_weights``, ``in_channels``.
    """
    return _vgg("E", False, **kwargs)


@register_model(family="VGG", paper=PAPER, year=2014, reference_params=143_678_248,
                reference_source=_ref("VGG19_BN"))
def vgg19_bn(**kwargs) -> nn.Module:
    """VGG-19 with batch norm (configuration E, torchvision's BN variant).

    Input 3x224x224 (ImageNet), 1000 classes. Batch norm after every convolution is
    torchvision's addition (the paper predates batch norm); otherwise as the plain model.
    Options: ``num_classes``, ``dropout``, ``init_weights``, ``in_channels``.
    """
    return _vgg("E", True, **kwargs)
