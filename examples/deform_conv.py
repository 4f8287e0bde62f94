"""A deformable convolution (DCNv2) block, counted: needs torchvision.

    cnnscope params examples/deform_conv.py:build
    cnnscope rf examples/deform_conv.py:build

One regular 3x3 convolution predicts, for each output position, the 2 offsets and the mask
value of each of the 9 sampling points (27 channels, as in DCNv2); ``DeformConv2d`` then
samples its input at the moved points (bilinear interpolation), scales each sample by its
mask value and convolves. cnnscope counts the convolution part as a regular convolution
and the sampling as 18 FLOPs per sample (17 without a mask); its receptive field is the
nominal one, the regular grid's (docs/conventions.md, "Deformable convolution").
"""

import torch
from torch import nn
from torchvision.ops import DeformConv2d


class DCNv2Block(nn.Module):
    def __init__(self, channels: int = 64, kernel: int = 3) -> None:
        super().__init__()
        k_points = kernel * kernel
        self.offset_mask = nn.Conv2d(channels, 3 * k_points, kernel, padding=kernel // 2)
        self.dcn = DeformConv2d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dy_dx, mask = torch.split(self.offset_mask(x), [18, 9], dim=1)
        return self.dcn(x, dy_dx, torch.sigmoid(mask))


def build(channels: int = 64) -> DCNv2Block:
    """The factory cnnscope calls."""
    return DCNv2Block(channels)


build.input_size = (64, 56, 56)  # the default input for this factory (C, H, W)
