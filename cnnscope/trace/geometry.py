"""What a traced op is: its short name, and readers of the spatial geometry its arguments
describe.

Each reader takes an aten op's name, its arguments (tensors already replaced by their
shapes) and its output shapes, and returns kernel, stride, padding, dilation and groups
(and the extras the receptive-field analysis needs: a pool's ceil mode, a cat's dim, a
pad's widths...). Which op gets which reader is written in the op table (``trace.ops``).
"""

from __future__ import annotations

import re
from typing import Any

from cnnscope.ops import deform_conv_math as dcm

# Names of the op families read by pattern (every aten upsample and reflection/replication
# pad, whatever its rank or variant); the op table names the common ones explicitly too.
UPSAMPLE_RE = re.compile(r"^_?upsample_")
PAD_RE = re.compile(r"^(reflection|replication)_pad[123]d$")

_NAMES: dict[Any, str] = {}  # op overload -> short name: op_name runs on every traced op


def op_name(func) -> str:
    """``aten.relu_.default`` -> ``relu``: the packet name without the in-place suffix."""
    name = _NAMES.get(func)
    if name is None:
        name = func.overloadpacket.__name__
        if name.endswith("_") and not name.endswith("__"):
            name = name[:-1]
        _NAMES[func] = name
    return name


def _tuple(v: Any, n: int | None = None) -> tuple[int, ...] | None:
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        return tuple(int(x) for x in v)
    return (int(v),) * (n or 1)


def read_conv(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """aten.convolution(input, weight, bias, stride, padding, dilation, transposed,
    output_padding, groups)."""
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


def read_deform_conv(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """torchvision::deform_conv2d: ``deform_conv_math`` reads it."""
    return dcm.geometry(dcm.parse(args))


def read_pool(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """max_pool*(x, k, s, p, d, ceil_mode) / avg_pool*(x, k, s, p, ceil_mode, ...)."""
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


def read_adaptive(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """Adaptive pooling: its geometry is its output size."""
    return {"extra": {"output_size": tuple(out_shapes[0][2:]), "adaptive": True}}


def read_upsample(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """upsample_*: the mode (from the name), the output size and align_corners."""
    # _upsample_nearest_exact2d -> "nearest-exact", as F.interpolate names the mode
    mode = name.split("upsample_")[1].rstrip("123d").replace("_exact", "-exact") or "nearest"
    extra = {"mode": mode, "output_size": tuple(out_shapes[0][2:])}
    # (bi/tri)linear and bicubic: upsample_*(input, output_size, align_corners, ...)
    if len(args) > 2 and isinstance(args[2], bool):
        extra["align_corners"] = args[2]
    return {"extra": extra}


def read_cat(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """cat/stack(tensors, dim)."""
    dim = args[1] if len(args) > 1 else 0
    return {"extra": {"dim": int(dim)}}


def read_slice(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """slice(x, dim, start, end, step)."""
    dim = args[1] if len(args) > 1 else 0
    start = args[2] if len(args) > 2 else None
    end = args[3] if len(args) > 3 else None
    step = args[4] if len(args) > 4 else 1
    return {"extra": {"dim": int(dim), "start": start, "end": end, "step": int(step)}}


def read_pad(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """constant_pad_nd / reflection_pad*d / replication_pad*d(x, pad): the pad widths."""
    if len(args) > 1:
        return {"extra": {"pad": tuple(int(p) for p in args[1])}}
    return {}


# Where dims go and which dim a softmax normalises: receptive fields need both.

def read_permute(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """permute(x, dims)."""
    if len(args) > 1:
        return {"extra": {"dims": tuple(int(d) for d in args[1])}}
    return {}


def read_transpose(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """transpose(x, dim0, dim1)."""
    if len(args) > 2:
        return {"extra": {"dims": (int(args[1]), int(args[2]))}}
    return {}


def read_softmax_dim(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """_softmax(x, dim, half_to_float) and its relatives: the normalised dim."""
    if len(args) > 1:
        return {"extra": {"dim": int(args[1])}}
    return {}


def read_reduced_dims(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """mean/sum/amax/amin(x, dim, keepdim): the reduced dims."""
    if len(args) > 1:
        dims = args[1]
        return {"extra": {"dim": tuple(dims) if isinstance(dims, (list, tuple)) else dims}}
    return {}
