"""U-Net: Ronneberger, Fischer, Brox, U-Net: Convolutional Networks for Biomedical Image
Segmentation, MICCAI 2015.

The network of the paper's Figure 1 (1 x 572 x 572 tile -> 2 x 388 x 388 map):

    contracting path  per level: two unpadded 3x3 convs + ReLU, then 2x2 max pool
                      stride 2; channels 64, 128, 256, 512, bottom 1024
    expanding path    per level: 2x2 up-convolution (transposed conv, stride 2) halving
                      the channels, concatenation with the center-cropped map of the
                      same level of the contracting path, two unpadded 3x3 convs + ReLU
    output            1x1 conv to the classes (2 in the paper)

23 convolutional layers in all. Because the convolutions are unpadded ("valid") the
output is smaller than the input and only some input sizes work: every map that is
pooled must have an even size. ``unet_output_size`` and ``valid_unet_sizes`` do that
arithmetic without building a model.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = ["UNet", "DoubleConv", "unet", "unet_output_size", "valid_unet_sizes"]

PAPER = (
    "Ronneberger, Fischer, Brox, U-Net: Convolutional Networks for Biomedical Image "
    "Segmentation, MICCAI 2015"
)

_DEPTH = 4  # max-pool steps in the paper's network


def unet_output_size(size: int, depth: int = _DEPTH, padding: bool = False) -> int:
    """Output side length of a U-Net for an input of side ``size``.

    Raises ``ValueError`` naming the first layer that fails: a map to be pooled with odd
    size (the 2x2 pool would drop a row and the skip connection no longer lines up) or a
    3x3 convolution left with no output. ``padding=True`` is the same-padding variant.
    """
    shrink = 0 if padding else 2  # one unpadded 3x3 conv removes a 1-pixel border
    s = size
    if s < 1:
        raise ValueError(f"input size {size} must be positive")
    for level in range(depth):
        s -= 2 * shrink
        if s < 1:
            raise ValueError(
                f"input size {size}: contracting level {level + 1} convs leave no pixels")
        if s % 2:
            raise ValueError(f"input size {size}: map of size {s} before pool {level + 1} is odd")
        s //= 2
    s -= 2 * shrink
    if s < 1:
        raise ValueError(f"input size {size}: bottom convs leave no pixels")
    for level in range(depth, 0, -1):
        s = 2 * s - 2 * shrink
        if s < 1:
            raise ValueError(f"input size {size}: expanding level {level} convs leave no pixels")
    return s


def valid_unet_sizes(near: int, depth: int = _DEPTH, padding: bool = False) -> list[int]:
    """The accepted input sizes closest to ``near``: the largest <= near and the smallest
    >= near (one element when ``near`` itself is valid; only the upper one when no
    smaller size is valid). E.g. ``valid_unet_sizes(572) == [572]`` (output 388).
    """
    def ok(s: int) -> bool:
        try:
            unet_output_size(s, depth, padding)
        except ValueError:
            return False
        return True

    # Validity is a congruence modulo 2**depth (even maps at every pool) above a minimum
    # size, so one period below ``near`` is enough, and the upward search always ends.
    step = 2 ** depth
    below = next((s for s in range(near, max(near - step, 0), -1) if ok(s)), None)
    above = next(s for s in itertools.count(max(near, 1)) if ok(s))
    return sorted({s for s in (below, above) if s is not None})


class DoubleConv(nn.Module):
    """Two 3x3 convolutions, each followed by ReLU (unpadded unless ``padding``)."""

    def __init__(self, in_channels: int, out_channels: int, padding: bool = False) -> None:
        super().__init__()
        pad = 1 if padding else 0
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=pad)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=pad)
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu2(self.conv2(self.relu1(self.conv1(x))))


class UNet(nn.Module):
    """The U-Net of Ronneberger et al. 2015; output (N, num_classes, H', W').

    Module names: ``enc1``..``enc4`` and ``pool1``..``pool4`` (contracting path),
    ``bottom``, ``up4``..``up1`` (up-convolutions) and ``dec4``..``dec1`` (expanding
    path), ``out_conv``. The crop and the concatenation are plain ops in forward().
    """

    def __init__(self, num_classes: int = 2, in_channels: int = 1, padding: bool = False,
                 base_channels: int = 64) -> None:
        super().__init__()
        c = base_channels
        self.enc1 = DoubleConv(in_channels, c, padding)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.enc2 = DoubleConv(c, 2 * c, padding)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.enc3 = DoubleConv(2 * c, 4 * c, padding)
        self.pool3 = nn.MaxPool2d(2, 2)
        self.enc4 = DoubleConv(4 * c, 8 * c, padding)
        self.pool4 = nn.MaxPool2d(2, 2)
        self.bottom = DoubleConv(8 * c, 16 * c, padding)
        self.up4 = nn.ConvTranspose2d(16 * c, 8 * c, 2, stride=2)
        self.dec4 = DoubleConv(16 * c, 8 * c, padding)
        self.up3 = nn.ConvTranspose2d(8 * c, 4 * c, 2, stride=2)
        self.dec3 = DoubleConv(8 * c, 4 * c, padding)
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = DoubleConv(4 * c, 2 * c, padding)
        self.up1 = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.dec1 = DoubleConv(2 * c, c, padding)
        self.out_conv = nn.Conv2d(c, num_classes, 1)

        # The paper's initialisation: Gaussian with std sqrt(2 / N), N = inputs per unit.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    @staticmethod
    def _crop_cat(skip: Tensor, up: Tensor) -> Tensor:
        # Center-crop the contracting-path map to the up-sampled map (sizes are static
        # shapes, not data), then stack skip channels first as in the paper's figure.
        h, w = up.shape[-2:]
        if skip.shape[-2:] != up.shape[-2:]:
            top = (skip.shape[-2] - h) // 2
            left = (skip.shape[-1] - w) // 2
            skip = skip[:, :, top:top + h, left:left + w]
        return torch.cat([skip, up], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool1(e1))
        e3 = self.enc3(self.pool2(e2))
        e4 = self.enc4(self.pool3(e3))
        b = self.bottom(self.pool4(e4))
        d4 = self.dec4(self._crop_cat(e4, self.up4(b)))
        d3 = self.dec3(self._crop_cat(e3, self.up3(d4)))
        d2 = self.dec2(self._crop_cat(e2, self.up2(d3)))
        d1 = self.dec1(self._crop_cat(e1, self.up1(d2)))
        return self.out_conv(d1)


def _unet(**kwargs) -> UNet:
    return UNet(**kwargs)


@register_model(family="U-Net", paper=PAPER, year=2015, input_size=(1, 572, 572),
                num_classes=2, dataset="ISBI 2012 EM segmentation")
def unet(**kwargs) -> nn.Module:
    """U-Net (Ronneberger et al. 2015), 1x572x572 EM tile -> 2x388x388 per-pixel logits.

    Options: ``num_classes=2``, ``in_channels=1``, ``padding=False`` (True: same-padded
    3x3 convs, output size = input size for sizes divisible by 16, the common modern
    variant), ``base_channels=64``. 31,030,658 parameters at defaults; the often quoted
    31,031,685 is zhixuhao/unet's Keras model, which adds a 3x3 conv to 2 channels and
    ends in a 1x1 conv to 1 channel.

    Departures from the paper: the drop-out layers "at the end of the contracting path"
    (positions and rate not given in the paper) are omitted; they hold no parameters
    and are the identity at inference. Softmax and the weighted cross-entropy loss are
    training-side and not modelled.

    The model does not check the input size: at a size ``valid_unet_sizes`` rejects, a
    pool floors an odd map and the crop is off-center by half a pixel. The output is
    still defined, but it is no longer the exact tiling the paper describes.
    """
    return _unet(**kwargs)
