"""Counting your own op and your own module: ``cnnscope.register_formula``.

    cnnscope params examples/custom_op.py:build
    python examples/custom_op.py

Two things cnnscope cannot know by itself:

- ``example::shift_mix``, an op defined with ``torch.library.custom_op`` (in real code, a
  CUDA or C++ kernel). Without a formula it is listed as unsupported; with one, its cost
  is counted wherever it runs (meta, CPU, CUDA). Its ``register_fake`` gives the output
  shape on the meta device.
- ``LowRankMixer``, a module whose forward you want counted as a whole, by your own
  formula, instead of op by op.

Formulas get shapes, not tensors: an op's formula gets its positional arguments (tensors
replaced by their shapes) and its output shapes; a module's formula gets the module, its
input shapes and its output shapes. Both return ``(macs, flops)``.
"""

import torch
from torch import nn

import cnnscope


@torch.library.custom_op("example::shift_mix", mutates_args=())
def shift_mix(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """out[:, c] = sum_k weight[c, k] * roll(x, k - 1, -1)[:, c] for k in 0..2 (per channel)."""
    return sum(weight[:, k, None, None] * torch.roll(x, k - 1, -1) for k in range(3))


@shift_mix.register_fake
def _(x, weight):
    return torch.empty_like(x)


@cnnscope.register_formula("example::shift_mix")
def shift_mix_cost(args, out_shapes):
    # three multiply-adds per output element
    n, c, h, w = out_shapes[0]
    macs = 3 * n * c * h * w
    return macs, 2 * macs


class LowRankMixer(nn.Module):
    """x -> U (V x): a C x C channel mixing factored through rank r."""

    def __init__(self, channels: int, rank: int):
        super().__init__()
        self.v = nn.Parameter(torch.randn(rank, channels) / channels ** 0.5)
        self.u = nn.Parameter(torch.randn(channels, rank) / rank ** 0.5)

    def forward(self, x):
        n, c, h, w = x.shape
        y = torch.einsum("rc,nchw->nrhw", self.v, x)
        return torch.einsum("cr,nrhw->nchw", self.u, y)


@cnnscope.register_formula(LowRankMixer)
def low_rank_cost(module, input_shapes, output_shapes):
    n, c, h, w = input_shapes[0]
    rank = module.v.shape[0]
    macs = 2 * n * h * w * c * rank  # two products through the rank-r bottleneck
    return macs, 2 * macs


class Net(nn.Module):
    def __init__(self, width: int = 16, rank: int = 4):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.shift = nn.Parameter(torch.ones(width, 3) / 3)
        self.mix = LowRankMixer(width, rank)
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        x = shift_mix(self.stem(x), self.shift)
        x = self.mix(x)
        return self.head(x.mean((2, 3)))


def build(width: int = 16, rank: int = 4) -> nn.Module:
    return Net(width, rank)


build.input_size = (3, 32, 32)


if __name__ == "__main__":
    report = cnnscope.analyze(build(), build.input_size)
    for row in report.visible_layers():
        print(f"{row.name:12} {row.type:14} MACs {row.macs:>10,}  FLOPs {row.flops:>10,}")
    print(f"total MACs {report.totals.macs:,}; unsupported ops: {dict(report.unsupported) or 'none'}")
