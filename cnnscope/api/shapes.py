"""Output sizes and input limits through the API (``cnnscope shape``): ``output_sizes``,
``minimum_input``, ``valid_sizes_near``.

The arithmetic is ``cnnscope.analysis.shapes``'s; resolving, building and tracing (the
search for the smallest side, the sizes a network runs on, the trace that words a
failure) happen here.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import replace
from typing import Any, Callable

from cnnscope.analysis.shapes import ShapeReport
from cnnscope.analysis.shapes import output_sizes as shape_rows
from cnnscope.api.analyze_model import analyze, smallest_input
from cnnscope.api.too_small import explain_too_small
from cnnscope.errors import CnnscopeError, InvalidOptionError
from cnnscope.models import ModelSource, resolve


def output_sizes(model: Any, input_size: Any = None, *, min: bool = False,
                 near: int | None = None, **builder_kwargs: Any) -> ShapeReport:
    """Every layer's output size with the formula that gives it (``cnnscope shape``).

    ``model``: a zoo name, a spec, or a ``ModelSource``; ``input_size`` as ``analyze`` takes
    it (None: the model's own). ``min=True`` adds the smallest square input the network
    accepts and why one pixel less fails; ``near=N`` the accepted sizes near N (U-Net: the
    sizes whose pooled maps are all even; other networks: sizes they run on). An input
    that is too small fails with the first layer that cannot fit it.

        >>> from cnnscope.api import output_sizes
        >>> output_sizes("unet", (1, 572, 572)).output_shapes  # doctest: +SKIP
        ((1, 2, 388, 388),)
    """
    if near is not None and near < 1:
        raise InvalidOptionError(f"--near {near} is not positive", "give a side length, e.g. --near 572")
    source = model if isinstance(model, ModelSource) else resolve(model, **builder_kwargs)
    report = analyze(source, input_size)  # a too-small input is explained by analyze
    result = shape_rows(report)
    if min:
        smallest, reason = minimum_input(source, report.input_size[0])
        result = replace(result, min_input=smallest, min_reason=reason)
    if near is not None:
        sizes, rule = valid_sizes_near(source, near, report.input_size[0])
        result = replace(result, near=near, valid_near=sizes, valid_rule=rule)
    return result


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


def size_helper(source) -> Callable[..., list[int]] | None:
    """The family's own ``valid_<model>_sizes(near, ...)`` function, if its file has one."""
    try:
        from cnnscope.zoo import model_info

        info = model_info(source.name)
    except Exception:
        return None
    module = sys.modules.get(getattr(info.factory, "__module__", ""), None)
    if module is None:
        return None
    for attr in (f"valid_{info.name}_sizes", "valid_sizes"):
        fn = getattr(module, attr, None)
        if callable(fn):
            return fn
    return None


def valid_sizes_near(source, near: int, channels: int | None = None,
                     span: int = 32) -> tuple[tuple[int, ...], str]:
    """Accepted square sizes near ``near`` and the rule used.

    With a family helper (U-Net: every pooled map even, so the crops stay centred) that
    helper decides. Otherwise a size is accepted when the network runs on it: ``near``
    itself if it does, else the closest sizes below and above within ``span``.
    """
    from cnnscope.trace.sizes import check_elements
    from cnnscope.trace.tracer import trace_module

    helper = size_helper(source)
    if helper is not None:
        params = inspect.signature(helper).parameters
        kwargs = {k: v for k, v in dict(source.kwargs).items() if k in params}
        sizes = tuple(helper(near, **kwargs))
        return sizes, f"{helper.__module__}.{helper.__name__}"
    c = channels or (source.input_size or (3, 224, 224))[0]
    check_elements((c, near + span, near + span), 1)  # too large to trace: say so, not "none"
    net = source.build("meta")

    def runs(s: int) -> bool:
        if s < 1:
            return False
        try:
            trace_module(net, (c, s, s), 1, model_name=source.name)
        except CnnscopeError:
            return False
        return True

    if runs(near):
        return (near,), "the network runs on this size"
    below = next((s for s in range(near - 1, max(near - span, 0), -1) if runs(s)), None)
    above = next((s for s in range(near + 1, near + span) if runs(s)), None)
    return tuple(s for s in (below, above) if s is not None), "the network runs on this size"
