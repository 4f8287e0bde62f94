"""GoogLeNet / Inception-v1 (Szegedy et al. 2015), the network of the paper's Table 1.

The nine inception modules are data (``GOOGLENET_TABLE1``, the table's rows with the
paper's own params/ops figures) so that spec tables can set the model against the paper.
Layer settings the table leaves out follow the authors' Caffe release (``bvlc_googlenet``):
LRN size 5, alpha 1e-4, beta 0.75; pools rounding up (``ceil_mode``); 3x3/1 max pool with
padding 1 in the pool branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = ["GoogLeNet", "GoogLeNetOutputs", "Inception", "InceptionAux", "InceptionRow",
           "GOOGLENET_TABLE1", "googlenet"]

PAPER = "Szegedy et al., Going Deeper with Convolutions, CVPR 2015"


@dataclass(frozen=True)
class InceptionRow:
    """One inception row of Table 1, as printed in the paper."""

    name: str  # "3a"
    output_size: int  # spatial side of the output ("28x28x256" -> 28)
    output_channels: int  # depth of the output ("28x28x256" -> 256)
    ch1x1: int  # "#1x1"
    ch3x3red: int  # "#3x3 reduce"
    ch3x3: int  # "#3x3"
    ch5x5red: int  # "#5x5 reduce"
    ch5x5: int  # "#5x5"
    pool_proj: int  # "pool proj"
    paper_params_k: int  # "params": weights without biases, in units of 1024 (the paper's K)
    paper_ops_m: int  # "ops": multiply-adds, in millions


GOOGLENET_TABLE1: tuple[InceptionRow, ...] = (
    InceptionRow("3a", 28, 256, 64, 96, 128, 16, 32, 32, 159, 128),
    InceptionRow("3b", 28, 480, 128, 128, 192, 32, 96, 64, 380, 304),
    InceptionRow("4a", 14, 512, 192, 96, 208, 16, 48, 64, 364, 73),
    InceptionRow("4b", 14, 512, 160, 112, 224, 24, 64, 64, 437, 88),
    InceptionRow("4c", 14, 512, 128, 128, 256, 24, 64, 64, 463, 100),
    InceptionRow("4d", 14, 528, 112, 144, 288, 32, 64, 64, 580, 119),
    InceptionRow("4e", 14, 832, 256, 160, 320, 32, 128, 128, 840, 170),
    InceptionRow("5a", 7, 832, 256, 160, 320, 32, 128, 128, 1072, 54),
    InceptionRow("5b", 7, 1024, 384, 192, 384, 48, 128, 128, 1388, 71),
)

# Auxiliary classifiers sit on the outputs of these modules (Sec. 5).
AUX_AFTER = ("4a", "4d")


class GoogLeNetOutputs(NamedTuple):
    """Training-mode output with auxiliary heads (torchvision's order)."""

    logits: Tensor
    aux_logits2: Optional[Tensor]
    aux_logits1: Optional[Tensor]


class ConvReLU(nn.Module):
    """Convolution with bias, then ReLU: the paper's "all convolutions use rectified linear
    activation" (torchvision's BasicConv2d has batch norm instead of the bias)."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, **kwargs)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv(x))


class Inception(nn.Module):
    """Four parallel branches concatenated along channels (Figure 2b of the paper)."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int,
                 ch5x5red: int, ch5x5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = ConvReLU(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            ConvReLU(in_channels, ch3x3red, kernel_size=1),
            ConvReLU(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            ConvReLU(in_channels, ch5x5red, kernel_size=1),
            ConvReLU(ch5x5red, ch5x5, kernel_size=5, padding=2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            ConvReLU(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: 5x5/3 average pool, 1x1 conv 128, fc 1024, dropout 70%, fc."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.avgpool = nn.AvgPool2d(kernel_size=5, stride=3, ceil_mode=True)  # 14x14 -> 4x4
        self.conv = ConvReLU(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(p=dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(self.avgpool(x))
        x = torch.flatten(x, 1)
        x = self.dropout(self.relu(self.fc1(x)))
        return self.fc2(x)


class GoogLeNet(nn.Module):
    """Stem, inception modules 3a-5b with max pools between stages, average pool, linear."""

    def __init__(self, num_classes: int = 1000, aux_logits: bool = False,
                 dropout: float = 0.4, dropout_aux: float = 0.7,
                 table: tuple[InceptionRow, ...] = GOOGLENET_TABLE1) -> None:
        super().__init__()
        self.aux_logits = aux_logits
        self.conv1 = ConvReLU(3, 64, kernel_size=7, stride=2, padding=3)  # 224 -> 112
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # -> 56
        self.lrn1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        # Table 1's second row: "3x3 reduce" 64 then 3x3 192 (two layers of depth).
        self.conv2_reduce = ConvReLU(64, 64, kernel_size=1)
        self.conv2 = ConvReLU(64, 192, kernel_size=3, padding=1)
        self.lrn2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # -> 28

        channels = 192
        self.stage_ends: dict[str, str] = {}  # inception name -> max pool run after it
        for i, row in enumerate(table):
            setattr(self, f"inception{row.name}",
                    Inception(channels, row.ch1x1, row.ch3x3red, row.ch3x3, row.ch5x5red,
                              row.ch5x5, row.pool_proj))
            channels = row.ch1x1 + row.ch3x3 + row.ch5x5 + row.pool_proj
            nxt = table[i + 1] if i + 1 < len(table) else None
            if nxt is not None and nxt.name[0] != row.name[0]:
                pool = f"maxpool{int(row.name[0])}"  # after 3b: maxpool3, after 4e: maxpool4
                setattr(self, pool, nn.MaxPool2d(3, stride=2, ceil_mode=True))
                self.stage_ends[row.name] = pool
        self.blocks = tuple(row.name for row in table)

        self.aux1: Optional[InceptionAux] = None
        self.aux2: Optional[InceptionAux] = None
        if aux_logits:
            by_name = {row.name: row for row in table}
            self.aux1 = InceptionAux(by_name[AUX_AFTER[0]].output_channels, num_classes,
                                     dropout_aux)
            self.aux2 = InceptionAux(by_name[AUX_AFTER[1]].output_channels, num_classes,
                                     dropout_aux)

        self.avgpool = nn.AvgPool2d(kernel_size=7, stride=1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor | GoogLeNetOutputs:
        x = self.maxpool1(self.conv1(x))
        x = self.lrn1(x)
        x = self.conv2(self.conv2_reduce(x))
        x = self.maxpool2(self.lrn2(x))

        aux1 = aux2 = None
        for name in self.blocks:
            x = getattr(self, f"inception{name}")(x)
            if self.training and self.aux1 is not None and name == AUX_AFTER[0]:
                aux1 = self.aux1(x)
            if self.training and self.aux2 is not None and name == AUX_AFTER[1]:
                aux2 = self.aux2(x)
            if name in self.stage_ends:
                x = getattr(self, self.stage_ends[name])(x)

        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.fc(self.dropout(x))
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


@register_model(family="GoogLeNet", paper=PAPER, year=2015, input_size=(3, 224, 224),
                num_classes=1000, dataset="ImageNet")
def googlenet(**kwargs) -> nn.Module:
    """GoogLeNet (Szegedy et al. 2015, Table 1): 3x224x224 ImageNet, 1000 classes.

    As in the paper: convolutions with bias + ReLU and no batch norm, LRN after the first
    pool and after conv2, real 5x5 convolutions in the third branch, max pools rounding up
    so maps are 112, 56, 28, 14, 7 as in the table, 7x7 average pool, 40% dropout, linear.
    ``aux_logits=True`` adds the two auxiliary classifiers on 4a and 4d (5x5/3 average
    pool, 1x1 conv 128, fc 1024, 70% dropout, fc); they run only in training mode, where the
    output is ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``; in eval mode the
    output is the main logits. The paper gives no exact parameter count: the test derives
    it from the table.

    torchvision's ``googlenet`` (6,624,904 params) differs: batch norm after every
    convolution (no conv biases), a 3x3 instead of a 5x5 convolution in the third branch
    (a known slip kept for weight compatibility), no LRN, its 1x1/3x3 stem convolutions
    named conv2/conv3, adaptive pools, and ``transform_input``.
    Options: ``num_classes``, ``aux_logits``, ``dropout``, ``dropout_aux``.
    """
    return GoogLeNet(**kwargs)
