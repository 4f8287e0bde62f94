"""CapsNet: Sabour, Frosst, Hinton, Dynamic Routing Between Capsules, NeurIPS 2017.

The three-layer capsule network of the paper's Figure 1 for MNIST (1 x 28 x 28):

    conv1        256 9x9 kernels, stride 1, ReLU             -> 256 x 20 x 20
    primary_caps 9x9 stride-2 conv 256 -> 32 * 8 channels,    -> 32 x 6 x 6 capsules of 8D
                 squashed (no ReLU: squash is the non-linearity)
    digit_caps   u_hat_{j|i} = W_ij u_i, W: 1152 x 10 x 16 x 8 -> 10 capsules of 16D
                 dynamic routing, 3 iterations (Procedure 1)
    output       capsule lengths ||v_j||                       -> N x 10

plus the optional reconstruction decoder (Figure 2): the digit capsules masked to the
selected class, fc 512 ReLU, fc 1024 ReLU, fc 784 sigmoid.

Routing is written as plain tensor ops (matmul, softmax, mul, sum, sqrt, div) over a
fixed number of iterations, so it runs on the meta device and a tracer sees every op.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = ["CapsNet", "PrimaryCaps", "DigitCaps", "squash", "capsnet"]

PAPER = "Sabour, Frosst, Hinton, Dynamic Routing Between Capsules, NeurIPS 2017"

# Added under the square root of the squash so a zero vector maps to zero instead of
# NaN; the paper's formula has no epsilon (every TF/PyTorch port adds one).
_SQUASH_EPS = 1e-8


def squash(s: Tensor, dim: int = -1) -> Tensor:
    """Eq. 1: v = ||s||^2 / (1 + ||s||^2) * s / ||s||, along ``dim``."""
    squared_norm = (s * s).sum(dim=dim, keepdim=True)
    scale = squared_norm / (1.0 + squared_norm)
    return scale * s / torch.sqrt(squared_norm + _SQUASH_EPS)


class PrimaryCaps(nn.Module):
    """Convolutional capsules: one conv gives ``num_maps`` grids of ``caps_dim``-D vectors.

    Output is (N, num_maps * H * W, caps_dim), squashed. The conv's output channels are
    grouped map-major (channel = map * caps_dim + component), as in the paper's "32
    channels of convolutional 8D capsules".
    """

    def __init__(self, in_channels: int = 256, num_maps: int = 32, caps_dim: int = 8,
                 kernel_size: int = 9, stride: int = 2) -> None:
        super().__init__()
        self.num_maps = num_maps
        self.caps_dim = caps_dim
        self.conv = nn.Conv2d(in_channels, num_maps * caps_dim, kernel_size=kernel_size,
                              stride=stride)

    def forward(self, x: Tensor) -> Tensor:
        u = self.conv(x)
        n, _, h, w = u.shape
        u = u.view(n, self.num_maps, self.caps_dim, h, w)
        # (N, maps, dim, H, W) -> (N, maps, H, W, dim) -> (N, maps*H*W, dim)
        u = u.permute(0, 1, 3, 4, 2).reshape(n, self.num_maps * h * w, self.caps_dim)
        return squash(u)


class DigitCaps(nn.Module):
    """Fully connected capsule layer with routing-by-agreement (the paper's Procedure 1).

    ``weight`` holds every W_ij (in_caps x out_caps x out_dim x in_dim) as one parameter;
    there is no bias, as in the paper. The routing logits b_ij are not parameters: they
    start at zero for each input.
    """

    def __init__(self, in_caps: int = 1152, in_dim: int = 8, out_caps: int = 10,
                 out_dim: int = 16, routings: int = 3) -> None:
        super().__init__()
        if routings < 1:
            raise ValueError(f"routings must be >= 1, got {routings}")
        self.in_caps = in_caps
        self.out_caps = out_caps
        self.routings = routings
        self.weight = nn.Parameter(torch.empty(in_caps, out_caps, out_dim, in_dim))
        # Small random transforms; the paper does not state an initialisation.
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, u: Tensor) -> Tensor:
        # u: (N, in_caps, in_dim). Predictions u_hat_{j|i} = W_ij u_i, one batched matmul:
        # (1, in, out, out_dim, in_dim) @ (N, in, 1, in_dim, 1) -> (N, in, out, out_dim, 1)
        u_hat = torch.matmul(self.weight.unsqueeze(0), u.unsqueeze(2).unsqueeze(-1)).squeeze(-1)
        b = torch.zeros_like(u_hat[..., 0])  # (N, in_caps, out_caps) routing logits
        for r in range(self.routings):
            c = torch.softmax(b, dim=2)  # coupling coefficients over the output capsules
            s = (c.unsqueeze(-1) * u_hat).sum(dim=1)  # (N, out_caps, out_dim)
            v = squash(s)
            # The paper also updates b after the last iteration; that update feeds nothing,
            # so it is skipped (the output is identical and no dead op is counted).
            if r < self.routings - 1:
                b = b + (u_hat * v.unsqueeze(1)).sum(dim=-1)  # agreement u_hat . v
        return v


class CapsNet(nn.Module):
    """CapsNet of Sabour et al. 2017; forward returns the digit-capsule lengths (N, classes).

    With ``decoder=True`` forward returns ``(lengths, reconstruction)``; the capsules are
    masked by ``target`` (class indices) when given, as in training, else by the longest
    capsule, as at test time. The reconstruction has the input's shape.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
                 routings: int = 3, decoder: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.image_shape = (in_channels, image_size, image_size)
        self.conv1 = nn.Conv2d(in_channels, 256, kernel_size=9, stride=1)
        self.relu1 = nn.ReLU(inplace=True)
        self.primary_caps = PrimaryCaps(256, num_maps=32, caps_dim=8, kernel_size=9, stride=2)
        grid = ((image_size - 9 + 1) - 9) // 2 + 1  # 28 -> 20 -> 6
        if grid < 1:
            raise ValueError(f"image_size {image_size} is too small for two 9x9 convolutions")
        self.digit_caps = DigitCaps(in_caps=32 * grid * grid, in_dim=8, out_caps=num_classes,
                                    out_dim=16, routings=routings)
        self.decoder: nn.Sequential | None = None
        if decoder:
            self.decoder = nn.Sequential(
                nn.Linear(16 * num_classes, 512),
                nn.ReLU(inplace=True),
                nn.Linear(512, 1024),
                nn.ReLU(inplace=True),
                nn.Linear(1024, in_channels * image_size * image_size),
                nn.Sigmoid(),
            )

    def forward(self, x: Tensor, target: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        x = self.relu1(self.conv1(x))
        u = self.primary_caps(x)
        v = self.digit_caps(u)  # (N, classes, 16)
        lengths = torch.sqrt((v * v).sum(dim=-1))
        if self.decoder is None:
            return lengths
        # One-hot mask by scatter: works on the meta device, no data-dependent branching.
        index = lengths.argmax(dim=1) if target is None else target
        mask = torch.zeros_like(lengths).scatter(1, index.unsqueeze(1), 1.0)
        masked = (v * mask.unsqueeze(-1)).flatten(1)
        reconstruction = self.decoder(masked).view(-1, *self.image_shape)
        return lengths, reconstruction


def _capsnet(**kwargs) -> CapsNet:
    return CapsNet(**kwargs)


@register_model(family="CapsNet", paper=PAPER, year=2017, input_size=(1, 28, 28),
                num_classes=10, dataset="MNIST")
def capsnet(**kwargs) -> nn.Module:
    """CapsNet (Sabour et al. 2017) for MNIST 1x28x28: conv1, PrimaryCaps, DigitCaps, 3 routings.

    Options: ``num_classes=10`` (digit capsules), ``in_channels=1``, ``image_size=28``
    (sets the number of primary capsules, 32 x 6 x 6 at 28), ``routings=3``,
    ``decoder=False``. Parameters: 6.8M without the decoder, 8.2M with it (the paper's
    figures).

    Departures from the paper: the reconstruction decoder is off by default because it is
    a training regulariser, not part of classification; the routing skips the final,
    unused update of the logits b; squash adds 1e-8 under the square root; the paper's
    W_ij initialisation is unstated (normal, std 0.01 here). The margin and
    reconstruction losses are training-only and not modelled.
    """
    return _capsnet(**kwargs)
