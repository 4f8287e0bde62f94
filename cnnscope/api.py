"""The Python API: everything the CLI does, as functions returning records.

    >>> import cnnscope
    >>> report = cnnscope.analyze("resnet50")
    >>> report.totals.macs
    4089184256
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnscope.errors import InputTooSmallError
from cnnscope.models import ModelSource, resolve
from cnnscope.trace.records import ModelReport
from cnnscope.trace.sizes import check_batch, smallest_spatial_size, too_small_message
from cnnscope.trace.tracer import resolve_device, trace_module

DEFAULT_INPUT = (3, 224, 224)


def analyze(
    model: str | nn.Module | ModelSource,
    input_size: tuple[int, ...] | None = None,
    batch: int = 1,
    *,
    device: str | torch.device | None = None,
    train: bool = False,
    counter: str = "cnnscope",
    **model_kwargs: Any,
) -> ModelReport:
    """Trace a model once and return its per-layer records and totals.

    ``model`` is a zoo name (``"resnet50"``), any spec ``resolve`` accepts, or an
    ``nn.Module`` (traced where it lives). ``input_size`` is C x H x W (default: the
    model's own). ``device`` None means the meta device: nothing is allocated.
    ``counter="fvcore"`` counts with fvcore instead, as a cross-check.
    """
    check_batch(batch)
    dev = resolve_device(device)
    if isinstance(model, nn.Module):
        size = tuple(input_size or DEFAULT_INPUT)
        return trace_module(model, size, batch, device=next(model.parameters()).device
                            if any(True for _ in model.parameters()) else dev, train=train)
    source = model if isinstance(model, ModelSource) else resolve(model, **model_kwargs)
    size = tuple(input_size or source.input_size or DEFAULT_INPUT)
    if counter == "fvcore":
        from cnnscope.trace.fvcore_counter import fvcore_report

        return fvcore_report(source, size, batch)
    net = source.build(dev)
    try:
        return trace_module(net, size, batch, model_name=source.name, device=dev, train=train)
    except InputTooSmallError as err:
        smallest = smallest_input(source, size[0], net=net)
        raise too_small_message(err, size[0], smallest) from None


def smallest_input(source: ModelSource | str, channels: int | None = None, *,
                   net: nn.Module | None = None) -> int | None:
    """Smallest square side the network accepts without a feature map vanishing (meta)."""
    src = source if isinstance(source, ModelSource) else resolve(source)
    c = channels or (src.input_size or DEFAULT_INPUT)[0]
    model = net if net is not None else src.build("meta")

    def fits(side: int) -> bool:
        try:
            trace_module(model, (c, side, side), 1, model_name=src.name)
        except InputTooSmallError:
            return False
        except Exception:  # a classifier that wants one exact size is not "too small"
            return True
        return True

    default = (src.input_size or DEFAULT_INPUT)[1]
    return smallest_spatial_size(fits, start=max(1, default // 8))
