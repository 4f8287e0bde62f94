"""Output size of a sliding window along one axis: PyTorch's arithmetic, written once.

Convolution and pooling (the course notes' ``floor((n + 2p - f)/s + 1)`` with dilation)::

    out = floor((n + 2p - d(k-1) - 1) / s + 1)

``ceil_mode`` pooling uses ceil instead, then drops a last window that would start in
the right padding (PyTorch's ``pooling_output_shape``). Transposed convolution inverts it::

    out = (n - 1)s - 2p + d(k-1) + output_padding + 1

The meta shape kernels (``cnnscope.ops``) compute shapes with these; ``analysis.shapes`` writes
the same arithmetic, filled in, next to each layer (``conv_formula``).
"""

from __future__ import annotations


def conv_output_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1,
                     ceil_mode: bool = False) -> int:
    """Output length of a convolution or pooling window along one axis (PyTorch's rule)."""
    span = n + 2 * p - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + p:  # the last window would start in the right padding
        out -= 1
    return out


def transposed_output_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1,
                           output_padding: int = 0) -> int:
    """Output length of a transposed convolution along one axis."""
    return (n - 1) * s - 2 * p + d * (k - 1) + output_padding + 1


def conv_formula(n: int, k: int, s: int = 1, p: int = 0, d: int = 1,
                 ceil_mode: bool = False) -> tuple[str, int]:
    """The filled-in formula and its value: ``floor((224 + 2*3 - 1*(7-1) - 1)/2 + 1) = 112``."""
    out = conv_output_size(n, k, s, p, d, ceil_mode)
    op = "ceil" if ceil_mode else "floor"
    text = f"{op}(({n} + 2*{p} - {d}*({k}-1) - 1)/{s} + 1)"
    if ceil_mode:
        raw = -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1
        if raw != out:
            text += " - 1 (last window would start in the padding)"
    return f"{text} = {out}", out


def transposed_formula(n: int, k: int, s: int = 1, p: int = 0, d: int = 1,
                       output_padding: int = 0) -> tuple[str, int]:
    """The filled-in transposed-convolution formula and its value."""
    out = transposed_output_size(n, k, s, p, d, output_padding)
    return f"({n} - 1)*{s} - 2*{p} + {d}*({k}-1) + {output_padding} + 1 = {out}", out
