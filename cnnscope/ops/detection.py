"""Detection ops: non-maximum suppression and region-of-interest pooling."""

from __future__ import annotations

from typing import Any, Sequence

from cnnscope.ops.cost import Cost, Shape, out_numel
from cnnscope.ops.entry import BACKWARD_NOT_DIFFERENTIABLE, entry

# One IoU of two boxes: 4 min/max, 2 widths, 2 clamps, 3 products, 2 adds/subs, 1 divide.
IOU_FLOPS = 14


def nms_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Non-maximum suppression of N boxes: a sort plus at most one IoU per pair.

    An upper bound: the kernel skips pairs whose first box is already suppressed, which
    depends on the scores.
    """
    n = args[0][0] if args and args[0] else 0
    return Cost(0, n * max(1, (n - 1).bit_length()) + IOU_FLOPS * n * (n - 1) // 2)


def roi_align_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """RoIAlign: each output averages s x s bilinear samples (7 FLOPs each, as bilinear
    upsampling) plus one divide; s = sampling_ratio (2 when adaptive, torchvision's
    detection default). roi_align(input, rois, scale, ph, pw, sampling_ratio, aligned)."""
    s = args[5] if len(args) > 5 and isinstance(args[5], int) and args[5] > 0 else 2
    return Cost(0, out_numel(outs) * (7 * s * s + 1))


def roi_pool_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """RoIPool: a max over each bin; counted as one compare per output (bins vary by box)."""
    return Cost(0, out_numel(outs))


_NOT_YET = "not counted yet: its backward op is reported as unsupported under --train"

ENTRIES = (
    entry(("nms", "batched_nms"), cost=nms_cost, data_dependent=True,
          backward=BACKWARD_NOT_DIFFERENTIABLE),
    entry(("roi_align", "_roi_align"), cost=roi_align_cost, backward=_NOT_YET),
    entry(("roi_pool", "_roi_pool"), cost=roi_pool_cost, backward=_NOT_YET),
)
