"""A deformable convolution written out in loops, counting every multiply and add: the
independent count cnnscope's formula (``cnnscope.ops.deform_conv_math``) is checked against,
and the CPU kernel of the stand-in ``torchvision::deform_conv2d`` op (``deform_op``).

It follows the definition (Dai et al. 2017, "Deformable Convolutional Networks"; Zhu et al.
2019, DCNv2 for the mask) and the structure of torchvision's CPU kernel
(``deform_conv2d_kernel.cpp``): a deformable im2col (one bilinear sample per input channel,
kernel point and output position, times its mask value), then the weight times the columns,
then the bias. It does every sample's arithmetic, also for a point outside the input (whose
corners read zeros), as the shape-only count assumes. Tensors are nested Python lists.
"""

from __future__ import annotations

import math
from collections import Counter


class Arithmetic:
    """Multiplies, adds and subtractions, each counted under the current ``phase``."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.phase = "sampling"

    def mul(self, a: float, b: float) -> float:
        self.counts[self.phase, "mul"] += 1
        return a * b

    def add(self, a: float, b: float) -> float:
        self.counts[self.phase, "add"] += 1
        return a + b

    def sub(self, a: float, b: float) -> float:
        self.counts[self.phase, "add"] += 1  # a subtraction is an add
        return a - b

    def total(self, phase: str) -> int:
        return self.counts[phase, "mul"] + self.counts[phase, "add"]


def _bilinear(plane: list[list[float]], y: float, x: float, ops: Arithmetic) -> float:
    """torchvision's ``bilinear_interpolate``: the four corners around (y, x), weighted."""
    height, width = len(plane), len(plane[0])
    y_low, x_low = math.floor(y), math.floor(x)

    def at(i: int, j: int) -> float:
        return plane[i][j] if 0 <= i < height and 0 <= j < width else 0.0

    lh, lw = ops.sub(y, y_low), ops.sub(x, x_low)
    hh, hw = ops.sub(1.0, lh), ops.sub(1.0, lw)
    w1, w2, w3, w4 = ops.mul(hh, hw), ops.mul(hh, lw), ops.mul(lh, hw), ops.mul(lh, lw)
    v1, v2 = at(y_low, x_low), at(y_low, x_low + 1)
    v3, v4 = at(y_low + 1, x_low), at(y_low + 1, x_low + 1)
    total = ops.add(ops.mul(w1, v1), ops.mul(w2, v2))
    total = ops.add(total, ops.mul(w3, v3))
    return ops.add(total, ops.mul(w4, v4))


def deform_conv2d(x, weight, offset, mask, bias, stride, padding, dilation, groups: int,
                  offset_groups: int, use_mask: bool, ops: Arithmetic | None = None):
    """Output of a deformable convolution (nested lists N x C_out x H_out x W_out)."""
    ops = ops or Arithmetic()
    n_batch, c_in, height, width = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    c_out, c_per_group, kh, kw = (len(weight), len(weight[0]), len(weight[0][0]),
                                  len(weight[0][0][0]))
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    h_out = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    k_points = kh * kw
    channels_per_offset_group = c_in // offset_groups
    out_per_group = c_out // groups
    out = []
    for n in range(n_batch):
        # The deformable im2col: columns[c][k][oy][ox].
        ops.phase = "sampling"
        columns = [[[[0.0] * w_out for _ in range(h_out)] for _ in range(k_points)]
                   for _ in range(c_in)]
        for c in range(c_in):
            g = c // channels_per_offset_group
            for i in range(kh):
                for j in range(kw):
                    k = i * kw + j
                    for oy in range(h_out):
                        for ox in range(w_out):
                            dy = offset[n][g * 2 * k_points + 2 * k][oy][ox]
                            dx = offset[n][g * 2 * k_points + 2 * k + 1][oy][ox]
                            y = ops.add(oy * sh - ph + i * dh, dy)  # grid point: indices
                            xx = ops.add(ox * sw - pw + j * dw, dx)
                            value = _bilinear(x[n][c], y, xx, ops)
                            if use_mask:
                                value = ops.mul(value, mask[n][g * k_points + k][oy][ox])
                            columns[c][k][oy][ox] = value
        # The convolution part: weight times columns, per group, then the bias.
        ops.phase = "convolution"
        planes = []
        for co in range(c_out):
            group = co // out_per_group
            plane = []
            for oy in range(h_out):
                row = []
                for ox in range(w_out):
                    acc = 0.0
                    for ci in range(c_per_group):
                        c = group * c_per_group + ci
                        for i in range(kh):
                            for j in range(kw):
                                product = ops.mul(weight[co][ci][i][j],
                                                  columns[c][i * kw + j][oy][ox])
                                acc = ops.add(acc, product)
                    row.append(ops.add(acc, bias[co]))
                plane.append(row)
            planes.append(plane)
        out.append(planes)
    return out
