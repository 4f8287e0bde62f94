"""Deformable convolution (``torchvision.ops.deform_conv2d``, ``DeformConv2d``): everything
cnnscope knows about it, as pure functions of its arguments' shapes.

The op is ``torchvision::deform_conv2d(input, weight, offset, mask, bias, stride_h, stride_w,
pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups, use_mask)``; its backward
``torchvision::_deform_conv2d_backward(grad, <the same 14 arguments>)`` returns the gradients
of input, weight, offset, mask and bias. ``parse`` reads either argument list once.

How it computes (torchvision's kernels, Dai et al. 2017, Zhu et al. 2019 for the mask): for
every input channel c, kernel point k (K = kh*kw of them) and output position, it samples the
input at the regular-grid point moved by a learned fractional offset, by bilinear
interpolation, multiplies the sample by the mask (DCNv2, ``use_mask``), and writes it to a
column matrix (a deformable im2col); the output is then the weight times the columns, a
regular convolution's matrix product, plus the bias.

Conventions (the project's: MACs are multiply-accumulates, FLOPs = 2 x MACs + one per bias
add + the elementwise work), counted as two independent parts:

* **the convolution part**: exactly a regular convolution of the same geometry,
  ``MACs = N * C_out * H_out * W_out * (C_in / groups) * kh * kw`` (``conv_cost``'s count), and
  ``FLOPs = 2 x MACs + N * C_out * H_out * W_out`` bias adds. The op always adds its bias
  tensor: torchvision passes a tensor of zeros when the layer has no bias, and its kernel
  adds it all the same, so the bias adds are always counted.
* **the sampling part**: S = N * C_in * K * H_out * W_out bilinear samples (one per input
  channel, kernel point and output position, shared by every output channel: the im2col
  columns; offset groups only choose which offsets a channel reads and do not change S).
  One sample costs **17 FLOPs and 0 MACs**:

  - 2 adds: the offsets added to the regular-grid point (y and x);
  - 4 subtractions: the fractions ``lh = y - floor(y)``, ``lw``, and ``hh = 1 - lh``, ``hw``;
  - 4 multiplies: the corner weights ``hh*hw, hh*lw, lh*hw, lh*lw``;
  - 4 multiplies + 3 adds: the weighted sum of the four corners (the 7 FLOPs cnnscope
    counts per bilinear output element of ``upsample_bilinear2d``).

  With a mask (``use_mask``, DCNv2) the sample is multiplied by its mask value once: 18.
  The sampling is elementwise work, not a dot product of the layer, so it adds FLOPs and
  no MACs: the MACs column stays the convolutions', linear layers' and matrix products'
  (as for interpolation). Interpolation on a fixed grid counts 7 because its weights
  depend only on the row and column; here every sample has its own learned offset, so
  its coordinates and weights (the other 10) are computed per sample and are counted.
  Every sample is counted, also one that falls outside the input (the kernel then reads
  zeros): the count is shape-only, like every other formula.

What others count: torchvision's kernels (``deform_conv2d_kernel.cpp`` and ``.cu``) do
exactly the arithmetic above per sample (``bilinear_interpolate``, skipping a point wholly
outside the input), then a matrix product per group. fvcore has no handle for the op and
torch's ``FlopCounterMode`` no formula (both report nothing for it); projects that count it
with mmcv's or thop-style counters add a hook of their own, some counting the convolution
part only. cnnscope counts both parts and keeps them apart (``forward_parts``).

Backward (``_deform_conv2d_backward`` computes all five gradients, always; B = N * C_out *
H_out * W_out gradient elements, M = the forward's convolution MACs, m = 1 with a mask):

* columns gradient ``weight^T @ grad``: M MACs (shared by the input, offset and mask
  gradients, as the kernel shares it);
* input gradient: per sample 10 (coordinates and weights) + m (column gradient x mask) +
  8 (4 multiplies by the corner weights, 4 adds scattering into the input gradient);
* offset gradient: per sample 10 (coordinates and weights, recomputed) + m + 10 (the two
  partial derivatives of the sample, ``hw*(v3-v1) + lw*(v4-v2)`` and its x twin, 5 each)
  + 2 (each times the column gradient) + 2 (accumulated over the offset group's channels);
* mask gradient (with a mask only): per sample 7 (the unmasked sample) + 1 (times the
  column gradient) + 1 (accumulated);
* weight gradient: the columns sampled again (17 + m per sample) and ``grad @ columns^T``,
  M MACs;
* bias gradient: B adds.

So backward MACs = 2M (as a regular convolution's backward) and FLOPs = 4M + B + S x (59
without a mask, 71 with one).

Receptive field: the sampling points move by learned, data-dependent and unbounded
offsets, so no shape-only analysis can bound the real field. cnnscope reports the
**nominal** field, the regular grid of the same geometry (the field at zero offsets; the
offsets and the mask, computed from the input by other layers, are merged in as inputs at
the same output position), and marks the layer with ``RF_NOTE``.

Output size: the regular convolution's, ``floor((n + 2p - d(k-1) - 1)/s + 1)`` per axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any, Sequence

from cnnscope.ops.cost import Cost
from cnnscope.ops.outsize import conv_output_size

#: aten-level names: the forward op and its backward (``op_name`` of ``torchvision::...``).
FORWARD_OP = "deform_conv2d"
BACKWARD_OP = "_deform_conv2d_backward"

#: FLOPs of one bilinear sample: offset adds 2, fractions 4, corner weights 4, weighted sum 7.
SAMPLE_FLOPS = 2 + 4 + 4 + (4 + 3)
#: The modulation (DCNv2): one multiply per sample.
MASK_FLOPS = 1

#: What the receptive-field analysis says on a deformable layer.
RF_NOTE = ("deformable convolution: its sampling offsets are learned and data-dependent, so "
           "its real field is unbounded; the field shown is the nominal one (the regular grid "
           "of the same geometry, zero offsets), for this layer and every layer after it")


@dataclass(frozen=True)
class DeformArgs:
    """The op's arguments, tensors as shapes (one parser for the forward and the backward)."""

    input: tuple[int, ...]  # (N, C_in, H, W)
    weight: tuple[int, ...]  # (C_out, C_in / groups, kh, kw)
    offset: tuple[int, ...]  # (N, 2 * offset_groups * kh * kw, H_out, W_out)
    mask: tuple[int, ...]  # (N, offset_groups * kh * kw, H_out, W_out), or a dummy
    bias: tuple[int, ...]  # (C_out,)
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    offset_groups: int
    use_mask: bool

    @property
    def kernel_size(self) -> tuple[int, int]:
        return (int(self.weight[2]), int(self.weight[3]))

    @property
    def kernel_points(self) -> int:
        """K = kh * kw."""
        return prod(self.kernel_size)


def parse(args: Sequence[Any], backward: bool = False) -> DeformArgs:
    """The forward's 14 positional arguments, or the backward's 15 (``grad`` first)."""
    a = list(args[1:] if backward else args)
    if len(a) != 14:
        raise ValueError(f"deform_conv2d takes 14 arguments, got {len(a)}")
    x, w, offset, mask, bias = (tuple(int(d) for d in t) for t in a[:5])
    sh, sw, ph, pw, dh, dw, groups, offset_groups = (int(v) for v in a[5:13])
    return DeformArgs(x, w, offset, mask, bias, (sh, sw), (ph, pw), (dh, dw), groups,
                      offset_groups, bool(a[13]))


def output_shape(a: DeformArgs) -> tuple[int, int, int, int]:
    """(N, C_out, H_out, W_out): the regular convolution's output size."""
    h, w = (conv_output_size(n, k, s, p, d) for n, k, s, p, d in
            zip(a.input[2:], a.kernel_size, a.stride, a.padding, a.dilation))
    return (a.input[0], a.weight[0], h, w)


def geometry(a: DeformArgs) -> dict[str, Any]:
    """Kernel, stride, padding, dilation, groups (``read_conv``'s keys) and the extras."""
    return {
        "kernel_size": a.kernel_size,
        "stride": a.stride,
        "padding": a.padding,
        "dilation": a.dilation,
        "groups": a.groups,
        "extra": {"deformable": True, "offset_groups": a.offset_groups,
                  "use_mask": a.use_mask},
    }


def samples(a: DeformArgs) -> int:
    """S: bilinear samples, one per input channel, kernel point and output position."""
    n, _, h, w = output_shape(a)
    return n * a.input[1] * a.kernel_points * h * w


def conv_macs(a: DeformArgs) -> int:
    """The convolution part: a regular convolution's MACs."""
    return prod(output_shape(a)) * prod(a.weight[1:])


def bias_adds(a: DeformArgs) -> int:
    """One add per output element when the bias tensor holds C_out values (it always does
    through ``torchvision.ops``: zeros when the layer has none)."""
    return prod(output_shape(a)) if prod(a.bias) else 0


def sampling_flops(a: DeformArgs) -> int:
    """The sampling part: S x (17, or 18 with a mask)."""
    return samples(a) * (SAMPLE_FLOPS + (MASK_FLOPS if a.use_mask else 0))


def forward_parts(a: DeformArgs) -> dict[str, Cost]:
    """The forward cost, part by part (their sum is ``forward_cost``)."""
    macs = conv_macs(a)
    return {"convolution": Cost(macs, 2 * macs + bias_adds(a)),
            "sampling": Cost(0, sampling_flops(a))}


def forward_cost(a: DeformArgs) -> Cost:
    """MACs and FLOPs of the forward (see the module docstring)."""
    parts = forward_parts(a)
    return parts["convolution"] + parts["sampling"]


def backward_parts(a: DeformArgs) -> dict[str, Cost]:
    """The backward cost per gradient the op returns (their sum is ``backward_cost``)."""
    s, m, macs = samples(a), int(a.use_mask), conv_macs(a)
    n_out = prod(output_shape(a))
    return {
        "input": Cost(macs, 2 * macs + s * (10 + m + 8)),
        "offset": Cost(0, s * (10 + m + 10 + 2 + 2)),
        "mask": Cost(0, s * (7 + 1 + 1) if a.use_mask else 0),
        "weight": Cost(macs, 2 * macs + s * (SAMPLE_FLOPS + m)),
        "bias": Cost(0, n_out if prod(a.bias) else 0),
    }


def backward_cost(a: DeformArgs) -> Cost:
    """MACs and FLOPs of ``_deform_conv2d_backward`` (see the module docstring)."""
    total = Cost(0, 0)
    for part in backward_parts(a).values():
        total = total + part
    return total
