"""Inception-v4 and Inception-ResNet-v2 (Szegedy et al. 2017).

timm's definitions, which follow the TF-slim releases that produced the paper's weights:
each architecture with its own blocks, model class and builder. Inception-v3 is in
``inception.py``.

Every convolution is ``BasicConv2d``: conv (no bias) + BatchNorm (eps 0.001, as the
TensorFlow ports) + ReLU. Attribute names follow timm, so state-dict keys and per-layer
names line up with it. Pools inside the blocks are ``nn`` modules (``pool``) where the
reference calls ``F.avg_pool2d`` / ``F.max_pool2d``, so the tracer reports them by name;
pools have no parameters, so state dicts are unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cnnscope.zoo._inception_blocks import BasicConv2d
from cnnscope.zoo._registry import register_model

PAPER_V4 = (
    "Szegedy et al., Inception-v4, Inception-ResNet and the Impact of Residual Connections "
    "on Learning, AAAI 2017"
)


# ============================================================================ Inception-v4


class Mixed3a(nn.Module):
    """Stem split 1 (paper Figure 3): 3x3 max pool || 3x3 conv 96, both stride 2 -> 160."""

    def __init__(self) -> None:
        super().__init__()
        self.maxpool = nn.MaxPool2d(3, stride=2)
        self.conv = BasicConv2d(64, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.maxpool(x), self.conv(x)), 1)


class Mixed4a(nn.Module):
    """Stem split 2 (Figure 3): 1x1-3x3 || 1x1-7x1-1x7-3x3 branches -> 192."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(
            BasicConv2d(160, 64, kernel_size=1),
            BasicConv2d(64, 96, kernel_size=3),
        )
        self.branch1 = nn.Sequential(
            BasicConv2d(160, 64, kernel_size=1),
            BasicConv2d(64, 64, kernel_size=(1, 7), padding=(0, 3)),
            BasicConv2d(64, 64, kernel_size=(7, 1), padding=(3, 0)),
            BasicConv2d(64, 96, kernel_size=3),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x)), 1)


class Mixed5a(nn.Module):
    """Stem split 3 (Figure 3): 3x3 conv 192 stride 2 || max pool stride 2 -> 384."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = BasicConv2d(192, 192, kernel_size=3, stride=2)
        self.maxpool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.conv(x), self.maxpool(x)), 1)


class V4InceptionA(nn.Module):
    """Inception-A (paper Figure 4): 35x35, 384 -> 384."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = BasicConv2d(384, 96, kernel_size=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(384, 64, kernel_size=1),
            BasicConv2d(64, 96, kernel_size=3, padding=1),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(384, 64, kernel_size=1),
            BasicConv2d(64, 96, kernel_size=3, padding=1),
            BasicConv2d(96, 96, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
            BasicConv2d(384, 96, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class V4ReductionA(nn.Module):
    """Reduction-A (Figure 7) with Inception-v4's k, l, m, n = 192, 224, 256, 384 (Table 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = BasicConv2d(384, 384, kernel_size=3, stride=2)
        self.branch1 = nn.Sequential(
            BasicConv2d(384, 192, kernel_size=1),
            BasicConv2d(192, 224, kernel_size=3, padding=1),
            BasicConv2d(224, 256, kernel_size=3, stride=2),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class V4InceptionB(nn.Module):
    """Inception-B (Figure 5): 17x17, 1024 -> 1024, factorised 7x7 branches."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = BasicConv2d(1024, 384, kernel_size=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(1024, 192, kernel_size=1),
            BasicConv2d(192, 224, kernel_size=(1, 7), padding=(0, 3)),
            BasicConv2d(224, 256, kernel_size=(7, 1), padding=(3, 0)),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(1024, 192, kernel_size=1),
            BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0)),
            BasicConv2d(192, 224, kernel_size=(1, 7), padding=(0, 3)),
            BasicConv2d(224, 224, kernel_size=(7, 1), padding=(3, 0)),
            BasicConv2d(224, 256, kernel_size=(1, 7), padding=(0, 3)),
        )
        self.branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
            BasicConv2d(1024, 128, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class V4ReductionB(nn.Module):
    """Reduction-B (Figure 8): 17x17 -> 8x8, 1024 -> 1536."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(
            BasicConv2d(1024, 192, kernel_size=1),
            BasicConv2d(192, 192, kernel_size=3, stride=2),
        )
        self.branch1 = nn.Sequential(
            BasicConv2d(1024, 256, kernel_size=1),
            BasicConv2d(256, 256, kernel_size=(1, 7), padding=(0, 3)),
            BasicConv2d(256, 320, kernel_size=(7, 1), padding=(3, 0)),
            BasicConv2d(320, 320, kernel_size=3, stride=2),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class V4InceptionC(nn.Module):
    """Inception-C (Figure 6): 8x8, 1536 -> 1536, split 1x3 / 3x1 outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = BasicConv2d(1536, 256, kernel_size=1)

        self.branch1_0 = BasicConv2d(1536, 384, kernel_size=1)
        self.branch1_1a = BasicConv2d(384, 256, kernel_size=(1, 3), padding=(0, 1))
        self.branch1_1b = BasicConv2d(384, 256, kernel_size=(3, 1), padding=(1, 0))

        self.branch2_0 = BasicConv2d(1536, 384, kernel_size=1)
        self.branch2_1 = BasicConv2d(384, 448, kernel_size=(3, 1), padding=(1, 0))
        self.branch2_2 = BasicConv2d(448, 512, kernel_size=(1, 3), padding=(0, 1))
        self.branch2_3a = BasicConv2d(512, 256, kernel_size=(1, 3), padding=(0, 1))
        self.branch2_3b = BasicConv2d(512, 256, kernel_size=(3, 1), padding=(1, 0))

        self.branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
            BasicConv2d(1536, 256, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        x0 = self.branch0(x)

        x1_0 = self.branch1_0(x)
        x1 = torch.cat((self.branch1_1a(x1_0), self.branch1_1b(x1_0)), 1)

        x2_2 = self.branch2_2(self.branch2_1(self.branch2_0(x)))
        x2 = torch.cat((self.branch2_3a(x2_2), self.branch2_3b(x2_2)), 1)

        x3 = self.branch3(x)
        return torch.cat((x0, x1, x2, x3), 1)


# Inception-v4 body (paper Figure 9): how many of each module follow the stem.
INCEPTION_V4_REPEATS = {"inception_a": 4, "inception_b": 7, "inception_c": 3}


class InceptionV4(nn.Module):
    """Inception-v4 (timm's ``InceptionV4``): stem, 4 x A, Reduction-A, 7 x B, Reduction-B, 3 x C."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self.num_features = 1536
        features: list[nn.Module] = [
            BasicConv2d(3, 32, kernel_size=3, stride=2),
            BasicConv2d(32, 32, kernel_size=3),
            BasicConv2d(32, 64, kernel_size=3, padding=1),
            Mixed3a(),
            Mixed4a(),
            Mixed5a(),
        ]
        features += [V4InceptionA() for _ in range(INCEPTION_V4_REPEATS["inception_a"])]
        features += [V4ReductionA()]  # Mixed6a
        features += [V4InceptionB() for _ in range(INCEPTION_V4_REPEATS["inception_b"])]
        features += [V4ReductionB()]  # Mixed7a
        features += [V4InceptionC() for _ in range(INCEPTION_V4_REPEATS["inception_c"])]
        self.features = nn.Sequential(*features)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(dropout)
        self.last_linear = nn.Linear(self.num_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # N x 1536 x 8 x 8
        x = torch.flatten(self.global_pool(x), 1)
        return self.last_linear(self.head_drop(x))


def _inception_v4(*, num_classes: int = 1000, dropout: float = 0.2) -> InceptionV4:
    return InceptionV4(num_classes=num_classes, dropout=dropout)


@register_model(family="Inception", paper=PAPER_V4, year=2017, input_size=(3, 299, 299))
def inception_v4(**kwargs: Any) -> nn.Module:
    """Inception-v4 (Szegedy et al. 2017), timm's definition; 3x299x299, ImageNet.

    The paper's Figures 3-9: the stem (Figure 3, 299 -> 35x35x384), 4 x Inception-A,
    Reduction-A (k, l, m, n = 192, 224, 256, 384), 7 x Inception-B, Reduction-B,
    3 x Inception-C, average pooling, dropout (keep 0.8) and a 1000-way classifier.
    42,679,816 parameters (derived layer by layer in the tests; timm publishes only
    the rounded 42.68M).

    Options: ``num_classes`` (1000), ``dropout`` (0.2: the paper's keep probability 0.8;
    timm defaults to 0).

    Departures from the paper, inherited from timm / the TF-slim release: every conv has
    batch norm (eps 0.001) and no bias, which the figures do not draw; in Inception-B
    and Inception-C some 1x7/7x1 (1x3/3x1) factorised convolutions come in the other
    order than the figures draw them (same shapes and parameter counts). The pool
    branches average without counting padding (``count_include_pad=False``) as TF does.
    """
    return _inception_v4(**kwargs)


# ==================================================================== Inception-ResNet-v2


class ResnetMixed5b(nn.Module):
    """TF-slim's stem ending: an Inception-v3-style 35x35 module, 192 -> 320."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = BasicConv2d(192, 96, kernel_size=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(192, 48, kernel_size=1),
            BasicConv2d(48, 64, kernel_size=5, padding=2),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(192, 64, kernel_size=1),
            BasicConv2d(64, 96, kernel_size=3, padding=1),
            BasicConv2d(96, 96, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
            BasicConv2d(192, 64, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class Block35(nn.Module):
    """Inception-ResNet-A (paper Figure 16): 35x35, three branches, linear 1x1 back to 320."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(320, 32, kernel_size=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(320, 32, kernel_size=1),
            BasicConv2d(32, 32, kernel_size=3, padding=1),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(320, 32, kernel_size=1),
            BasicConv2d(32, 48, kernel_size=3, padding=1),
            BasicConv2d(48, 64, kernel_size=3, padding=1),
        )
        # The "1x1 conv, linear" of the figure: no BN, no ReLU, so it keeps a bias.
        self.conv2d = nn.Conv2d(128, 320, kernel_size=1)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)
        out = self.conv2d(out)
        return self.relu(out * self.scale + x)


class ResnetMixed6a(nn.Module):
    """Reduction-A (Figure 7) with Inception-ResNet-v2's k, l, m, n = 256, 256, 384, 384."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = BasicConv2d(320, 384, kernel_size=3, stride=2)
        self.branch1 = nn.Sequential(
            BasicConv2d(320, 256, kernel_size=1),
            BasicConv2d(256, 256, kernel_size=3, padding=1),
            BasicConv2d(256, 384, kernel_size=3, stride=2),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class Block17(nn.Module):
    """Inception-ResNet-B (Figure 17): 17x17, 1x1 || 1x1-1x7-7x1, linear 1x1 back to 1088."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(1088, 192, kernel_size=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(1088, 128, kernel_size=1),
            BasicConv2d(128, 160, kernel_size=(1, 7), padding=(0, 3)),
            BasicConv2d(160, 192, kernel_size=(7, 1), padding=(3, 0)),
        )
        self.conv2d = nn.Conv2d(384, 1088, kernel_size=1)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        out = self.conv2d(out)
        return self.relu(out * self.scale + x)


class ResnetMixed7a(nn.Module):
    """Reduction-B of Inception-ResNet-v2 (Figure 18): 17x17 -> 8x8, 1088 -> 2080."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(
            BasicConv2d(1088, 256, kernel_size=1),
            BasicConv2d(256, 384, kernel_size=3, stride=2),
        )
        self.branch1 = nn.Sequential(
            BasicConv2d(1088, 256, kernel_size=1),
            BasicConv2d(256, 288, kernel_size=3, stride=2),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(1088, 256, kernel_size=1),
            BasicConv2d(256, 288, kernel_size=3, padding=1),
            BasicConv2d(288, 320, kernel_size=3, stride=2),
        )
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class Block8(nn.Module):
    """Inception-ResNet-C (Figure 19): 8x8, 1x1 || 1x1-1x3-3x1, linear 1x1 back to 2080."""

    def __init__(self, scale: float = 1.0, no_relu: bool = False) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(2080, 192, kernel_size=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(2080, 192, kernel_size=1),
            BasicConv2d(192, 224, kernel_size=(1, 3), padding=(0, 1)),
            BasicConv2d(224, 256, kernel_size=(3, 1), padding=(1, 0)),
        )
        self.conv2d = nn.Conv2d(448, 2080, kernel_size=1)
        self.relu = None if no_relu else nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        out = self.conv2d(out)
        out = out * self.scale + x
        if self.relu is not None:
            out = self.relu(out)
        return out


# How many residual blocks of each grid size (TF-slim release; the paper's Figure 15
# draws 5 / 10 / 5) and the residual scale of each (Section 3.3 scales residuals by
# 0.1-0.3 before the addition to keep training stable).
INCEPTION_RESNET_V2_REPEATS = {"block35": 10, "block17": 20, "block8": 10}
INCEPTION_RESNET_V2_SCALES = {"block35": 0.17, "block17": 0.10, "block8": 0.20}


class InceptionResnetV2(nn.Module):
    """Inception-ResNet-v2 (timm's ``InceptionResnetV2``)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self.num_features = 1536
        repeats, scales = INCEPTION_RESNET_V2_REPEATS, INCEPTION_RESNET_V2_SCALES

        self.conv2d_1a = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, kernel_size=3)
        self.conv2d_2b = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, kernel_size=1)
        self.conv2d_4a = BasicConv2d(80, 192, kernel_size=3)
        self.maxpool_5a = nn.MaxPool2d(3, stride=2)
        self.mixed_5b = ResnetMixed5b()
        self.repeat = nn.Sequential(*[Block35(scale=scales["block35"]) for _ in range(repeats["block35"])])
        self.mixed_6a = ResnetMixed6a()
        self.repeat_1 = nn.Sequential(*[Block17(scale=scales["block17"]) for _ in range(repeats["block17"])])
        self.mixed_7a = ResnetMixed7a()
        # The last Inception-ResNet-C block is unscaled and has no ReLU (TF-slim's
        # ``block8(net, activation_fn=None)``); timm keeps it apart as ``block8``.
        self.repeat_2 = nn.Sequential(*[Block8(scale=scales["block8"]) for _ in range(repeats["block8"] - 1)])
        self.block8 = Block8(no_relu=True)
        self.conv2d_7b = BasicConv2d(2080, self.num_features, kernel_size=1)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(dropout)
        self.classif = nn.Linear(self.num_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv2d_1a(x)  # N x 32 x 149 x 149
        x = self.conv2d_2a(x)  # N x 32 x 147 x 147
        x = self.conv2d_2b(x)  # N x 64 x 147 x 147
        x = self.maxpool_3a(x)  # N x 64 x 73 x 73
        x = self.conv2d_3b(x)  # N x 80 x 73 x 73
        x = self.conv2d_4a(x)  # N x 192 x 71 x 71
        x = self.maxpool_5a(x)  # N x 192 x 35 x 35
        x = self.mixed_5b(x)  # N x 320 x 35 x 35
        x = self.repeat(x)
        x = self.mixed_6a(x)  # N x 1088 x 17 x 17
        x = self.repeat_1(x)
        x = self.mixed_7a(x)  # N x 2080 x 8 x 8
        x = self.repeat_2(x)
        x = self.block8(x)
        x = self.conv2d_7b(x)  # N x 1536 x 8 x 8
        x = torch.flatten(self.global_pool(x), 1)
        return self.classif(self.head_drop(x))


def _inception_resnet_v2(*, num_classes: int = 1000, dropout: float = 0.2) -> InceptionResnetV2:
    return InceptionResnetV2(num_classes=num_classes, dropout=dropout)


@register_model(family="Inception", paper=PAPER_V4, year=2017, input_size=(3, 299, 299))
def inception_resnet_v2(**kwargs: Any) -> nn.Module:
    """Inception-ResNet-v2 (Szegedy et al. 2017), timm's definition; 3x299x299, ImageNet.

    Residual Inception blocks (Figures 16, 17, 19) whose linear 1x1 output is scaled
    (0.17 / 0.10 / 0.20, within the paper's Section 3.3 range of 0.1-0.3) before the
    identity addition, with Reduction-A (k, l, m, n = 256, 256, 384, 384) and Reduction-B
    (Figure 18) between the grids, then average pooling, dropout (keep 0.8) and a
    1000-way classifier. 55,843,464 parameters (derived in the tests layer by layer, and
    from Keras' published 55,873,736, which counts BN moving statistics but no BN scale).

    Options: ``num_classes`` (1000), ``dropout`` (0.2: the paper's keep 0.8; timm's
    default is 0).

    This is the network Google released and timm ports (TF-slim), which departs from the
    paper's figures: the stem is Inception-v3's (conv 1a-4a + a 35x35 module
    ``mixed_5b`` -> 320 channels) instead of Figure 3's (-> 384); the residual widths are
    320 / 1088 / 2080 instead of the figures' 384 / 1154 / 2048; there are 10 / 20 / 10
    residual blocks instead of Figure 15's 5 / 10 / 5; the last block is unscaled with
    no ReLU; and a 1x1 conv to 1536 (``conv2d_7b``) precedes the pooling. No auxiliary
    classifier: the paper does not describe one for this model and timm has none.
    """
    return _inception_resnet_v2(**kwargs)
