"""Xception (Chollet, CVPR 2017): Inception modules taken to the extreme.

Every Inception module becomes a depthwise separable convolution (a per-channel 3x3
followed by a pointwise 1x1), stacked linearly with residual connections: an entry
flow that shrinks 299x299 to 19x19x728, a middle flow of eight identical residual
blocks, and an exit flow to 2048 features (the paper's Figure 5).

Follows timm's legacy ``xception`` (a port of the Keras model whose weights the paper
reports) with timm's attribute names: ``conv1``/``bn1``, ``conv2``/``bn2``, ``block1``
to ``block12`` (each ``rep`` + ``skip``/``skipbn``), ``conv3``/``bn3``, ``conv4``/``bn4``
and ``fc``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

PAPER = "Chollet, Xception: Deep Learning with Depthwise Separable Convolutions, CVPR 2017"


class SeparableConv2d(nn.Module):
    """Depthwise k x k (one filter per channel, depth multiplier 1) + pointwise 1x1, no bias.

    No BN or ReLU between the two: the paper (Section 4.7) found that an intermediate
    non-linearity hurts.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 stride: int = 1, padding: int = 0, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding, dilation,
                               groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, 1, 0, 1, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.conv1(x))


class Block(nn.Module):
    """``reps`` x (ReLU, SeparableConv 3x3, BN), then a 3x3/stride max pool when ``stride`` > 1,
    plus a shortcut: the identity, or a 1x1 strided conv + BN when the shape changes.

    ``grow_first`` puts the channel increase in the first separable conv (entry flow);
    otherwise in the last (the exit flow's 728 -> 728 -> 1024).
    """

    def __init__(self, in_channels: int, out_channels: int, reps: int, stride: int = 1,
                 start_with_relu: bool = True, grow_first: bool = True) -> None:
        super().__init__()
        if out_channels != in_channels or stride != 1:
            self.skip = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(out_channels)
        else:
            self.skip = None

        rep: list[nn.Module] = []
        for i in range(reps):
            if grow_first:
                inc = in_channels if i == 0 else out_channels
                outc = out_channels
            else:
                inc = in_channels
                outc = in_channels if i < reps - 1 else out_channels
            # The first ReLU must not be in place: the shortcut still reads the input.
            rep.append(nn.ReLU(inplace=i > 0))
            rep.append(SeparableConv2d(inc, outc, 3, stride=1, padding=1))
            rep.append(nn.BatchNorm2d(outc))
        if not start_with_relu:
            # block1 directly follows conv2 + ReLU; Figure 5 has no second ReLU there.
            rep = rep[1:]
        if stride != 1:
            rep.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*rep)

    def forward(self, inp: Tensor) -> Tensor:
        x = self.rep(inp)
        skip = self.skipbn(self.skip(inp)) if self.skip is not None else inp
        return x + skip


# The paper's Figure 5 as data: (in, out, separable convs, stride, start_with_relu,
# grow_first) for block1..block12.
XCEPTION_BLOCKS: tuple[tuple[int, int, int, int, bool, bool], ...] = (
    # entry flow: 147x147x64 -> 19x19x728
    (64, 128, 2, 2, False, True),
    (128, 256, 2, 2, True, True),
    (256, 728, 2, 2, True, True),
    # middle flow, repeated eight times
    *((728, 728, 3, 1, True, True),) * 8,
    # exit flow: 19x19x728 -> 10x10x1024
    (728, 1024, 2, 2, True, False),
)


class Xception(nn.Module):
    """Xception for ImageNet (paper Figure 5)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_features = 2048

        self.conv1 = nn.Conv2d(3, 32, 3, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.act1 = nn.ReLU(inplace=True)

        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.act2 = nn.ReLU(inplace=True)

        for i, (cin, cout, reps, stride, start_relu, grow_first) in enumerate(XCEPTION_BLOCKS, 1):
            self.add_module(f"block{i}", Block(cin, cout, reps, stride, start_relu, grow_first))
        self.num_blocks = len(XCEPTION_BLOCKS)

        self.conv3 = SeparableConv2d(1024, 1536, 3, 1, 1)
        self.bn3 = nn.BatchNorm2d(1536)
        self.act3 = nn.ReLU(inplace=True)

        self.conv4 = SeparableConv2d(1536, self.num_features, 3, 1, 1)
        self.bn4 = nn.BatchNorm2d(self.num_features)
        self.act4 = nn.ReLU(inplace=True)

        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act1(self.bn1(self.conv1(x)))  # N x 32 x 149 x 149
        x = self.act2(self.bn2(self.conv2(x)))  # N x 64 x 147 x 147
        for i in range(1, self.num_blocks + 1):
            # 74 -> 37 -> 19 (entry), 19 (middle), 10 (exit)
            x = getattr(self, f"block{i}")(x)
        x = self.act3(self.bn3(self.conv3(x)))  # N x 1536 x 10 x 10
        x = self.act4(self.bn4(self.conv4(x)))  # N x 2048 x 10 x 10
        x = torch.flatten(self.global_pool(x), 1)
        return self.fc(self.head_drop(x))


def _xception(*, num_classes: int = 1000, dropout: float = 0.5) -> Xception:
    return Xception(num_classes=num_classes, dropout=dropout)


@register_model(
    family="Xception",
    paper=PAPER,
    year=2017,
    input_size=(3, 299, 299),
    reference_params=22_855_952,
    reference_source="Chollet 2017 Table 3 (Xception parameter count); equals Keras Xception "
    "trainable params (22,910,480 total less 54,528 BN moving statistics, buffers in PyTorch)",
)
def xception(**kwargs: Any) -> nn.Module:
    """Xception (Chollet 2017), the paper's Figure 5; 3x299x299, ImageNet.

    Entry flow (conv 32/2, conv 64, three residual blocks of two separable convs and a
    3x3/2 max pool, with 1x1/2 conv projections on the shortcut), middle flow (8 x three
    separable convs 728, identity shortcut), exit flow (728 -> 1024 block, separable
    convs 1536 and 2048, global average pooling, logistic regression). Every conv and
    separable conv is followed by batch norm; convolutions have no bias.

    Options: ``num_classes`` (1000), ``dropout`` (0.5: Section 4.3 puts a dropout of 0.5
    before the logistic regression for ImageNet; Keras leaves it out of the model and
    timm defaults to 0).

    Departures: none in the architecture. Figure 5's optional fully-connected layers
    before the classifier are left out, as in Keras and timm; the paper's Table 3 count
    (22,855,952 parameters, which this model has) is for the model without them. BN
    uses PyTorch's default eps (1e-5, as timm) where Keras uses 1e-3.
    """
    return _xception(**kwargs)
