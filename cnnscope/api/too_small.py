"""Why an input is too small: the first layer that cannot fit it, with its arithmetic.

Used by ``analyze`` (a too-small input fails with this message) and ``minimum_input``; it
builds the model on the meta device and runs it with hooks, which is the API's job. The
arithmetic is ``cnnscope.analysis.shapes.why_too_small``'s.
"""

from __future__ import annotations

from cnnscope.analysis.shapes import why_too_small


def explain_too_small(source, input_size: tuple[int, ...], fallback=None):
    """An ``InputTooSmallError`` naming the first layer that fails and its arithmetic.

    Runs the model once on the meta device with hooks on its torch.nn layers: the layer
    whose forward raised is the first that fails, and its input size and settings give
    the formula. Falls back to ``fallback`` (the tracer's error) when the failure is
    not inside a torch.nn layer with a window (e.g. in a functional call).
    """
    try:
        return _explain(source, input_size, fallback)
    except Exception:  # an explanation must never hide the original error
        return fallback


def _explain(source, input_size: tuple[int, ...], fallback):
    import torch
    from torch import nn

    from cnnscope.errors import InputTooSmallError

    net = source.build("meta")
    names = {id(m): n for n, m in net.named_modules()}
    running: list[tuple[nn.Module, tuple[int, ...]]] = []
    failed: list[tuple[nn.Module, tuple[int, ...]]] = []

    def pre(module, args):
        x = next((a for a in args if isinstance(a, torch.Tensor)), None)
        running.append((module, tuple(x.shape) if x is not None else ()))

    def post(module, args, output):
        running.pop()

    leaves = [m for m in net.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_pre_hook(pre) for m in leaves]
    handles += [m.register_forward_hook(post) for m in leaves]
    try:
        with torch.no_grad():
            net.eval()
            net(torch.empty((1, *input_size), device="meta"))
    except Exception:
        failed = list(running)
    finally:
        for h in handles:
            h.remove()
    size = "x".join(map(str, input_size))
    model = source.name
    hint = getattr(fallback, "hint", None)
    extra = dict(layer=getattr(fallback, "layer", None), min_size=getattr(fallback, "min_size", None))
    if not failed:
        return fallback
    module, shp = failed[-1]
    why = why_too_small(module, shp)
    if why is None:
        return fallback
    name = names.get(id(module), type(module).__name__)
    extra["layer"] = name
    return InputTooSmallError(f"input {size} is too small for {model}: layer {name} "
                              f"({type(module).__name__}) {why}", hint, **extra)
