"""Interpolation: every aten upsample op (and any new one, by its name), and grid sampling.

FLOPs per output element: nearest 0 (a copy); linear 3, bilinear 7, trilinear 15,
bicubic 31 (2^d multiplies + 2^d - 1 adds for the d-linear weights). Backward: as the
forward per gradient element (nearest: one add per output-gradient element).
"""

from __future__ import annotations

from typing import Any, Sequence

from cnnscope.ops.cost import Cost, Formula, Shape, out_numel, per_grad_element
from cnnscope.ops.entry import BACKWARD_IS_A_BACKWARD, RfRule, entry
from cnnscope.ops.meta_tensors import empty


def read_upsample(name: str, args: tuple, out_shapes: list) -> dict[str, Any]:
    """upsample_*: the mode (from the name), the output size and align_corners."""
    # _upsample_nearest_exact2d -> "nearest-exact", as F.interpolate names the mode
    mode = name.split("upsample_")[1].rstrip("123d").replace("_exact", "-exact") or "nearest"
    extra = {"mode": mode, "output_size": tuple(out_shapes[0][2:])}
    # (bi/tri)linear and bicubic: upsample_*(input, output_size, align_corners, ...)
    if len(args) > 2 and isinstance(args[2], bool):
        extra["align_corners"] = args[2]
    return {"extra": extra}


def resize_kernel(name: str, func, args: tuple, kwargs: dict) -> Any:
    """Ops whose output spatial size is an argument: upsample_*.default, adaptive pools."""
    x = args[0]
    size = args[1] if len(args) > 1 else None
    if func._overloadname != "default" or not isinstance(size, (list, tuple)) or not size:
        return NotImplemented  # the .vec overloads take scale factors: let PyTorch resolve them
    if not all(isinstance(n, int) and n >= 1 for n in size) or x.dim() < len(size) + 1:
        return NotImplemented
    if any(n == 0 for n in x.shape[x.dim() - len(size):]):
        return NotImplemented  # PyTorch raises on an empty input map
    if "upsample" in name and x.dim() != len(size) + 2:
        return NotImplemented
    return empty(x, (*x.shape[:x.dim() - len(size)], *size))


def nearest_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """Nearest-neighbour upsampling copies: no arithmetic."""
    return Cost(0, 0)


def interpolation_cost(flops_per_output: int) -> Formula:
    def cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
        return Cost(0, flops_per_output * out_numel(outs))

    cost.__doc__ = f"{flops_per_output} FLOPs per output element."
    return cost


def _interp_backward(per_output: int) -> Formula:
    def cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
        return Cost(0, per_output * out_numel([args[0]]))

    cost.__doc__ = f"{per_output} FLOPs per gradient element, as the forward."
    return cost


def _upsample(names: Any, **fields: Any):
    return entry(names, geometry=read_upsample, rf=RfRule.RESIZE, **fields)


_NEAREST = ("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
            "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d")
_NEAREST_BACKWARD = tuple(f"{n}_backward" for n in _NEAREST)
_BILINEAR = interpolation_cost(7)
_BACKWARD = dict(backward=BACKWARD_IS_A_BACKWARD)

ENTRIES = (
    _upsample(_NEAREST, cost=nearest_cost, meta=resize_kernel, backward=_NEAREST_BACKWARD),
    _upsample("upsample_linear1d", cost=interpolation_cost(3), meta=resize_kernel,
              backward=("upsample_linear1d_backward",)),
    _upsample("upsample_bilinear2d", cost=_BILINEAR, meta=resize_kernel,
              backward=("upsample_bilinear2d_backward",)),
    _upsample("_upsample_bilinear2d_aa", cost=_BILINEAR,
              backward=("_upsample_bilinear2d_aa_backward",)),
    _upsample("upsample_trilinear3d", cost=interpolation_cost(15), meta=resize_kernel,
              backward=("upsample_trilinear3d_backward",)),
    _upsample("upsample_bicubic2d", cost=interpolation_cost(31), meta=resize_kernel,
              backward=("upsample_bicubic2d_backward",)),
    _upsample("_upsample_bicubic2d_aa", cost=interpolation_cost(31),
              backward=("_upsample_bicubic2d_aa_backward",)),
    _upsample("_upsample_lanczos2d_aa"),
    _upsample(_NEAREST_BACKWARD, cost=per_grad_element(1), **_BACKWARD),
    _upsample("upsample_linear1d_backward", cost=_interp_backward(3), **_BACKWARD),
    _upsample(("upsample_bilinear2d_backward", "_upsample_bilinear2d_aa_backward"),
              cost=_interp_backward(7), **_BACKWARD),
    _upsample("upsample_trilinear3d_backward", cost=_interp_backward(15), **_BACKWARD),
    _upsample(("upsample_bicubic2d_backward", "_upsample_bicubic2d_aa_backward"),
              cost=_interp_backward(31), **_BACKWARD),
    entry("grid_sampler_2d", cost=_BILINEAR, rf=RfRule.OPAQUE_IF_SPATIAL,
          backward="not counted yet: its backward (grid_sampler_2d_backward) is reported as "
                   "unsupported under --train"),
    entry(("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"), rf=RfRule.RESIZE),
)

#: What any aten upsample op not listed above is (``names.UPSAMPLE_RE``): its geometry and
#: rule follow from its name.
UPSAMPLE_FAMILY = _upsample("upsample_*")
