"""MobileNetV2 (Sandler et al., CVPR 2018): inverted residuals with linear bottlenecks.

torchvision's definition and attribute names (``features.N``, ``features.N.conv``,
``classifier``). The body is the paper's Table 2 held as data
(``MOBILENET_V2_SETTINGS``), which the spec-table code reads as well.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

PAPER = "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018"


class InvertedResidualSetting(NamedTuple):
    """One row of the paper's Table 2: a sequence of ``n`` identical bottleneck blocks."""

    t: int  # expansion factor of the hidden layer
    c: int  # output channels (before the width multiplier)
    n: int  # blocks in the sequence
    s: int  # stride of the first block; the others have stride 1


# Paper Table 2, between the first conv (32 channels, stride 2) and the final 1x1 conv
# to 1280 channels.
MOBILENET_V2_SETTINGS: tuple[InvertedResidualSetting, ...] = (
    InvertedResidualSetting(t=1, c=16, n=1, s=1),
    InvertedResidualSetting(t=6, c=24, n=2, s=2),
    InvertedResidualSetting(t=6, c=32, n=3, s=2),
    InvertedResidualSetting(t=6, c=64, n=4, s=2),
    InvertedResidualSetting(t=6, c=96, n=3, s=1),
    InvertedResidualSetting(t=6, c=160, n=3, s=2),
    InvertedResidualSetting(t=6, c=320, n=1, s=1),
)


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``v`` to the nearest multiple of ``divisor``, never more than 10% below ``v``.

    The TensorFlow release's rule (torchvision ``_utils._make_divisible``): channel counts
    stay multiples of 8, which hardware kernels favour, at any width multiplier.
    """
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU6(nn.Sequential):
    """Conv (no bias, "same" padding) + BatchNorm + ReLU6; torchvision's Conv2dNormActivation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, groups: int = 1) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Bottleneck residual block (paper Table 1): 1x1 expand + ReLU6, 3x3 depthwise + ReLU6,
    1x1 linear projection; the shortcut only when stride is 1 and channels match."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2, got {stride}")
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup

        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(inp, hidden_dim, kernel_size=1))
        layers.extend([
            ConvBNReLU6(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
            # Linear bottleneck: no activation after the projection (paper Section 3.2).
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ])
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (torchvision's ``MobileNetV2``)."""

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        settings: tuple[InvertedResidualSetting, ...] = MOBILENET_V2_SETTINGS,
        round_nearest: int = 8,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        input_channel = _make_divisible(32 * width_mult, round_nearest)
        # The last layer never narrows below 1280: the paper applies multipliers below
        # one to every layer except the last convolutional layer.
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult), round_nearest)

        features: list[nn.Module] = [ConvBNReLU6(3, input_channel, stride=2)]
        for t, c, n, s in settings:
            output_channel = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t))
                input_channel = output_channel
        features.append(ConvBNReLU6(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(self.last_channel, num_classes),
        )

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # N x 1280 x 7 x 7
        x = torch.flatten(self.avgpool(x), 1)
        return self.classifier(x)


def _mobilenet_v2(*, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2) -> MobileNetV2:
    return MobileNetV2(num_classes=num_classes, width_mult=width_mult, dropout=dropout)


@register_model(
    family="MobileNet",
    paper=PAPER,
    year=2018,
    input_size=(3, 224, 224),
    reference_params=3_504_872,
    reference_source="torchvision MobileNet_V2_Weights.IMAGENET1K_V1 meta num_params",
)
def mobilenet_v2(**kwargs: Any) -> nn.Module:
    """MobileNetV2 (Sandler et al. 2018), torchvision's definition; 3x224x224, ImageNet.

    The paper's Table 2: conv 3x3/2 to 32 channels, 17 inverted-residual blocks from the
    (t, c, n, s) rows of ``MOBILENET_V2_SETTINGS``, a 1x1 conv to 1280, global average
    pooling and a linear classifier (the paper draws it as a 1x1 conv, which has the same
    parameters). ReLU6 everywhere except after the projections (linear bottlenecks).

    Options: ``num_classes`` (1000), ``width_mult`` (1.0; every channel count is scaled
    and rounded to a multiple of 8 with ``_make_divisible``, the last layer stays at
    least 1280), ``dropout`` (0.2, torchvision's; the paper gives no dropout rate).

    Departures: none in the architecture. Global average pooling is adaptive (the paper's
    7x7 avgpool at 224x224 input) so other input sizes work, as in torchvision; here it
    is an ``avgpool`` module where torchvision calls ``F.adaptive_avg_pool2d``.
    """
    return _mobilenet_v2(**kwargs)
