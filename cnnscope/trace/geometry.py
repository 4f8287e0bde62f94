"""What a traced op is: its short name and the spatial geometry its arguments describe.

``geometry`` reads kernel, stride, padding, dilation and groups (and the extras the
receptive-field analysis needs: a pool's ceil mode, a cat's dim, a pad's widths...) from an
aten op's arguments, with tensors already replaced by their shapes.
"""

from __future__ import annotations

import re
from typing import Any

# Ops whose arguments describe a layer's spatial geometry (kernel, stride, padding...).
_CONV_OPS = {"convolution", "_convolution"}
_POOL_OPS = {"max_pool2d_with_indices", "max_pool2d", "max_pool1d", "max_pool3d",
             "max_pool3d_with_indices", "avg_pool2d", "avg_pool1d", "avg_pool3d"}
_ADAPTIVE_OPS = {"_adaptive_avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
                 "_adaptive_avg_pool3d", "adaptive_max_pool3d"}
_UPSAMPLE_RE = re.compile(r"^_?upsample_")
_PAD_RE = re.compile(r"^(reflection|replication)_pad[123]d$")
# Leaf torch.nn layers whose inner ops must not lend them geometry (LRN pools over channels).
_NO_GEOMETRY_MODULES = {"LocalResponseNorm", "CrossMapLRN2d"}


def op_name(func) -> str:
    """``aten.relu_.default`` -> ``relu``: the packet name without the in-place suffix."""
    name = func.overloadpacket.__name__
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return name


def _tuple(v: Any, n: int | None = None) -> tuple[int, ...] | None:
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        return tuple(int(x) for x in v)
    return (int(v),) * (n or 1)


def geometry(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """Kernel/stride/padding/dilation/groups and extras of a geometry-bearing op."""
    if name in _CONV_OPS:
        w = args[1]
        nd = len(w) - 2
        transposed = bool(args[6]) if len(args) > 6 else False
        g: dict[str, Any] = {
            "kernel_size": tuple(w[2:]),
            "stride": _tuple(args[3], nd),
            "padding": _tuple(args[4], nd),
            "dilation": _tuple(args[5], nd),
            "groups": int(args[8]) if len(args) > 8 else 1,
        }
        if transposed:
            g["extra"] = {"transposed": True, "output_padding": _tuple(args[7], nd)}
        return g
    if name in _POOL_OPS:
        nd = 3 if "3d" in name else (1 if "1d" in name else 2)
        kernel = _tuple(args[1], nd)
        stride = _tuple(args[2], nd) if len(args) > 2 and args[2] not in (None, [], ()) else kernel
        padding = _tuple(args[3], nd) if len(args) > 3 else (0,) * nd
        if name.startswith("max"):
            dilation = _tuple(args[4], nd) if len(args) > 4 else (1,) * nd
            ceil_mode = bool(args[5]) if len(args) > 5 else False
        else:
            dilation = (1,) * nd
            ceil_mode = bool(args[4]) if len(args) > 4 else False
        extra = {"ceil_mode": ceil_mode, "pool": "max" if name.startswith("max") else "avg"}
        return {"kernel_size": kernel, "stride": stride, "padding": padding,
                "dilation": dilation, "extra": extra}
    if name in _ADAPTIVE_OPS:
        return {"extra": {"output_size": tuple(out_shapes[0][2:]), "adaptive": True}}
    if _UPSAMPLE_RE.match(name):
        # _upsample_nearest_exact2d -> "nearest-exact", as F.interpolate names the mode
        mode = name.split("upsample_")[1].rstrip("123d").replace("_exact", "-exact") or "nearest"
        extra = {"mode": mode, "output_size": tuple(out_shapes[0][2:])}
        # (bi/tri)linear and bicubic: upsample_*(input, output_size, align_corners, ...)
        if len(args) > 2 and isinstance(args[2], bool):
            extra["align_corners"] = args[2]
        return {"extra": extra}
    if name in ("cat", "stack"):
        dim = args[1] if len(args) > 1 else 0
        return {"extra": {"dim": int(dim)}}
    if name == "slice":
        dim = args[1] if len(args) > 1 else 0
        start = args[2] if len(args) > 2 else None
        end = args[3] if len(args) > 3 else None
        step = args[4] if len(args) > 4 else 1
        return {"extra": {"dim": int(dim), "start": start, "end": end, "step": int(step)}}
    if name == "constant_pad_nd" or (_PAD_RE.match(name) and len(args) > 1):
        return {"extra": {"pad": tuple(int(p) for p in args[1])}}
    # Where dims go and which dim a softmax normalises: receptive fields need both.
    if name == "permute" and len(args) > 1:
        return {"extra": {"dims": tuple(int(d) for d in args[1])}}
    if name == "transpose" and len(args) > 2:
        return {"extra": {"dims": (int(args[1]), int(args[2]))}}
    if name in ("_softmax", "_log_softmax", "softmax", "log_softmax") and len(args) > 1:
        return {"extra": {"dim": int(args[1])}}
    if name in ("mean", "sum", "amax", "amin") and len(args) > 1:
        dims = args[1]
        return {"extra": {"dim": tuple(dims) if isinstance(dims, (list, tuple)) else dims}}
    return {}
