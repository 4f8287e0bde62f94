"""Input limits through the API (``cnnscope shape``): ``minimum_input``.

The arithmetic and the explanations are ``cnnscope.analysis.shapes``'s; the search for
the smallest side and the trace that words a failure are ``analyze``'s.
"""

from __future__ import annotations

from cnnscope.analysis.shapes import explain_too_small
from cnnscope.api.analyze_model import analyze, smallest_input
from cnnscope.errors import CnnscopeError


def minimum_input(source, channels: int | None = None) -> tuple[tuple[int, ...] | None, str | None]:
    """Smallest square input accepted (C, S, S), and why S - 1 fails (one line)."""
    c = channels or (source.input_size or (3, 224, 224))[0]
    side = smallest_input(source, c)
    if side is None:
        return None, None
    reason = None
    if side > 1:
        err = explain_too_small(source, (c, side - 1, side - 1))
        if isinstance(err, CnnscopeError):
            reason = err.message
        else:
            try:
                analyze(source, (c, side - 1, side - 1))
            except CnnscopeError as exc:
                reason = exc.message
    return (c, side, side), reason
