"""FractalNet (Larsson, Maire, Shakhnarovich, ICLR 2017).

A fractal block with C columns expands f_1(z) = conv(z) by
f_{C+1}(z) = join(f_C(f_C(z)), conv(z)): column c (c = 0 the deepest) holds 2^(C-1-c)
conv-BN-ReLU layers and 2^C - 1 layers in all; wherever several columns end at the same
depth their outputs are joined by an element-wise mean, and every joined column continues
from the join. B blocks follow each other with 2x2 max pooling; the deepest path has
B * 2^(C-1) convolutions (40 for C=4, B=5). As in the paper, the pooling is applied to each
column before the block's last join (the paper swaps the two for convenience).

Drop-path (local and global) and the per-block dropout are training-time regularisers:
at evaluation every join averages all its inputs and dropout is the identity, which is what
this model computes. Dropout layers (rates 0, .1, .2, .3, .4 per block, the paper's CIFAR
setting) are present so that training-mode traces see them; drop-path is not modelled.
Convolutions have no bias (BN follows); the authors' Caffe convolutions carry one, 1 more
parameter per output channel (10,304 for C=3, 22,080 for C=4).
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = ["FractalConv", "FractalBlock", "FractalNet", "fractalnet", "fractalnet20"]

PAPER = ("Larsson, Maire, Shakhnarovich, FractalNet: Ultra-Deep Neural Networks without "
         "Residuals, ICLR 2017")

CIFAR_CHANNELS = (64, 128, 256, 512, 512)
CIFAR_DROPOUT = (0.0, 0.1, 0.2, 0.3, 0.4)


class FractalConv(nn.Module):
    """3x3 conv, BN, ReLU and (when the rate is positive) dropout."""

    def __init__(self, inplanes: int, planes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inplanes, planes, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn(self.conv(x)))
        return x if self.dropout is None else self.dropout(x)


class FractalBlock(nn.Module):
    """C columns of conv layers with mean joins, then 2x2 max pooling of each column."""

    def __init__(self, inplanes: int, planes: int, num_columns: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.num_columns = num_columns
        self.depth = 2 ** (num_columns - 1)
        self.columns = nn.ModuleList()
        for c in range(num_columns):
            length = self.depth // 2 ** c
            self.columns.append(nn.ModuleList(
                FractalConv(inplanes if k == 0 else planes, planes, dropout)
                for k in range(length)))
        self.pool = nn.MaxPool2d(2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        inputs = [x] * self.num_columns
        for step in range(self.depth):
            # Column c has a layer every 2^c steps; those ending at this step are joined.
            active = [c for c in range(self.num_columns) if (step + 1) % 2 ** c == 0]
            outs = [self.columns[c][step // 2 ** c](inputs[c]) for c in active]
            if step == self.depth - 1:
                outs = [self.pool(o) for o in outs]
            joined = outs[0]
            for o in outs[1:]:
                joined = joined + o
            if len(outs) > 1:
                joined = joined / len(outs)
            for c in active:
                inputs[c] = joined
        return inputs[0]


class FractalNet(nn.Module):
    """B fractal blocks (each ending in 2x2 max pooling), flatten, fc."""

    def __init__(self, num_columns: int = 4, channels: Sequence[int] = CIFAR_CHANNELS,
                 dropout: Sequence[float] | None = CIFAR_DROPOUT, num_classes: int = 10,
                 in_channels: int = 3) -> None:
        super().__init__()
        rates = tuple(dropout) if dropout is not None else (0.0,) * len(channels)
        if len(rates) != len(channels):
            raise ValueError("dropout needs one rate per block")
        blocks = []
        inplanes = in_channels
        for planes, rate in zip(channels, rates):
            blocks.append(FractalBlock(inplanes, planes, num_columns, rate))
            inplanes = planes
        self.blocks = nn.Sequential(*blocks)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(inplanes, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        # Five 2x2 pools take 32x32 to 1x1: the classifier sees the 512 channels directly.
        return self.fc(self.flatten(self.blocks(x)))


@register_model(family="FractalNet", paper=PAPER, year=2017, input_size=(3, 32, 32),
                num_classes=10, dataset="CIFAR-10")
def fractalnet(**kwargs) -> nn.Module:
    """FractalNet-40 (Larsson et al. 2017): C=4 columns, B=5 blocks, CIFAR.

    Input 3x32x32 (CIFAR-10), 10 classes. Channels 64/128/256/512/512, 15 conv-BN-ReLU
    layers per block (deepest path 5 * 8 = 40), mean joins, 2x2 max pooling per block.
    Parameter count by arithmetic: 76,106,634. It reproduces no parameter figure of the
    paper: to our reading of its Table 1 (not re-checked here), 38.6M is the 20-layer
    (C=3) network's figure and the 40-layer row lists 22.9M without the narrower widths
    that would give it. See ``fractalnet20`` for the C=3 network. Options:
    ``num_columns``, ``channels``, ``dropout`` (one rate per block; None for none),
    ``num_classes``, ``in_channels``.
    """
    return FractalNet(**kwargs)


@register_model(family="FractalNet", paper=PAPER, year=2017, input_size=(3, 32, 32),
                num_classes=10, dataset="CIFAR-10", reference_params=33_724_618,
                reference_source="osmr/imgclsmob fractalnet_cifar10 (C=3, B=5) model test")
def fractalnet20(**kwargs) -> nn.Module:
    """FractalNet-20 (Larsson et al. 2017): C=3 columns, B=5 blocks, CIFAR.

    Input 3x32x32 (CIFAR-10), 10 classes. The default of the authors' generator script
    (gustavla/fractalnet ``generation/fractalnet.py``: COLUMNS = 3, FILTERS =
    64/128/256/512/512, DROPOUTS = 0/.1/.2/.3/.4): 7 layers per block, deepest path
    5 * 4 = 20. The count (33,724,618 with bias-free convolutions; 33,734,922 with the
    Caffe biases) is 13% below the 38.6M that, to our reading, the paper's Table 1 gives
    for its 20-layer network; no reading of the layer table we tried reproduces 38.6M. Options:
    ``channels``, ``dropout``, ``num_classes``, ``in_channels``.
    """
    kwargs.setdefault("num_columns", 3)
    return FractalNet(**kwargs)
