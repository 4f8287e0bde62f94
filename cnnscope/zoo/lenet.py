"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998), as the paper describes it.

Most "LeNet-5" code in circulation is a modern simplification (ReLU, max pooling, a dense
C3, a softmax classifier). This one keeps the paper's layers so that its parameter count
is the paper's: 60,000 trainable parameters, layer by layer (Sec. II-B):

    C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164 -> 60,000 trainable
    output RBF layer: 10 x 84 = 840 weights set by hand and kept fixed (frozen here)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = ["LeNet5", "LENET5_C3_TABLE", "lenet5"]

PAPER = ("LeCun et al., Gradient-Based Learning Applied to Document Recognition, "
         "Proc. IEEE 1998")

# Table I of the paper: which S2 maps (0..5) each of the 16 C3 maps reads. Maps 0-5 see
# 3 contiguous inputs, 6-11 see 4 contiguous, 12-14 see 4 non-contiguous, 15 sees all.
# The paper breaks the symmetry this way to keep C3 small and force different features.
LENET5_C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

# Appendix A: f(a) = A tanh(S a) with A = 1.7159 and S = 2/3.
TANH_AMPLITUDE = 1.7159
TANH_SLOPE = 2.0 / 3.0


class ScaledTanh(nn.Module):
    """The paper's squashing function f(a) = 1.7159 tanh(2a/3)."""

    def __init__(self, amplitude: float = TANH_AMPLITUDE, slope: float = TANH_SLOPE) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope
        self.tanh = nn.Tanh()

    def forward(self, x: Tensor) -> Tensor:
        return self.amplitude * self.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4f}"


class Subsampling(nn.Module):
    """S2/S4: the sum of each 2x2 window times one trainable coefficient per map, plus a bias.

    Written as an average pool followed by a depthwise 1x1 convolution: the convolution holds
    exactly the paper's two parameters per map (the pool's 1/4 is absorbed in the coefficient)
    and the tracer sees ordinary layers.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)
        self.scale = nn.Conv2d(channels, channels, kernel_size=1, groups=channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.scale(self.pool(x))


class SparseConv(nn.Module):
    """C3: a 5x5 convolution where each output map reads only the inputs its table row names.

    Consecutive output maps with the same number of inputs share one grouped convolution:
    their input sets are gathered by slicing and concatenated, so that group g sees exactly
    row g of the table. A masked dense convolution would hold 2,416 parameters, not 1,516.
    """

    def __init__(self, table: tuple[tuple[int, ...], ...], kernel_size: int = 5) -> None:
        super().__init__()
        # Runs of rows of equal fan-in: [(first row, last row + 1), ...].
        runs: list[tuple[int, int]] = []
        for i, row in enumerate(table):
            if runs and len(table[runs[-1][0]]) == len(row):
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
        self.table = table
        self.runs = tuple(runs)
        self.convs = nn.ModuleList(
            nn.Conv2d(len(table[a]) * (b - a), b - a, kernel_size, groups=b - a) for a, b in runs
        )

    @staticmethod
    def _gather(x: Tensor, rows: tuple[tuple[int, ...], ...]) -> Tensor:
        # Each row is split into runs of consecutive map indices, one slice per run.
        pieces = []
        for row in rows:
            start = prev = row[0]
            for c in row[1:]:
                if c != prev + 1:
                    pieces.append(x[:, start:prev + 1])
                    start = c
                prev = c
            pieces.append(x[:, start:prev + 1])
        return torch.cat(pieces, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        outs = [conv(self._gather(x, self.table[a:b]))
                for (a, b), conv in zip(self.runs, self.convs)]
        return torch.cat(outs, dim=1)


class EuclideanRBF(nn.Module):
    """Output layer: y_i = sum_j (x_j - w_ij)^2, one unit per class (a penalty: lower is better).

    The paper sets the weights by hand to +1/-1 from stylised 7x12 bitmaps of the characters
    and keeps them fixed; they are a frozen parameter here (random +-1 values: the bitmaps
    are not reproduced, which changes no count).
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        weight = torch.empty(num_classes, in_features)
        if not weight.is_meta:  # a meta tensor has no values to set (and sign_ is slow there)
            with torch.no_grad():
                weight.uniform_(-1.0, 1.0).sign_()
        self.weight = nn.Parameter(weight, requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        diff = x.unsqueeze(1) - self.weight
        return (diff * diff).sum(dim=-1)


class LeNet5(nn.Module):
    """C1 - S2 - C3 - S4 - C5 - F6 - RBF output, scaled tanh after every layer up to F6."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1,
                 c3_table: tuple[tuple[int, ...], ...] = LENET5_C3_TABLE) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(in_channels, 6, kernel_size=5)
        self.act1 = ScaledTanh()
        self.s2 = Subsampling(6)
        self.act2 = ScaledTanh()
        self.c3 = SparseConv(c3_table)
        self.act3 = ScaledTanh()
        self.s4 = Subsampling(len(c3_table))
        self.act4 = ScaledTanh()
        self.c5 = nn.Conv2d(len(c3_table), 120, kernel_size=5)
        self.act5 = ScaledTanh()
        self.f6 = nn.Linear(120, 84)
        self.act6 = ScaledTanh()
        self.output = EuclideanRBF(84, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act1(self.c1(x))
        x = self.act2(self.s2(x))
        x = self.act3(self.c3(x))
        x = self.act4(self.s4(x))
        x = self.act5(self.c5(x))
        x = torch.flatten(x, 1)
        x = self.act6(self.f6(x))
        return self.output(x)


@register_model(family="LeNet", paper=PAPER, year=1998, input_size=(1, 32, 32),
                num_classes=10, dataset="MNIST",
                reference_params=60_840,
                reference_source=("LeCun et al. 1998 Sec. II-B: 156+12+1516+32+48120+10164 = "
                                  "60,000 trainable, plus the 84x10 fixed RBF weights"))
def lenet5(**kwargs) -> nn.Module:
    """LeNet-5 (LeCun et al. 1998): 1x32x32 digits (MNIST 28x28 padded to 32x32), 10 classes.

    Faithful to the paper: trainable subsampling (coefficient + bias per map), the sparse
    C3 connection table (Table I), scaled tanh f(a) = 1.7159 tanh(2a/3), and the Euclidean
    RBF output layer whose 840 hand-set weights are frozen (60,840 params, 60,000 trainable).

    Departures: the RBF weights are random +-1 instead of the paper's character bitmaps; the
    output is the RBF penalty (distance to each class code, lower = better), not logits.
    Options: ``num_classes`` (RBF units), ``in_channels``.
    """
    return LeNet5(**kwargs)
