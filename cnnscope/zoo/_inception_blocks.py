"""``BasicConv2d``, the convolution unit of the Inception family files (inception.py,
inception_v4.py): a private module, so that building one model imports one family file.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


class BasicConv2d(nn.Module):
    """Conv (no bias: BN supplies the shift) + BatchNorm (eps 0.001) + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))
