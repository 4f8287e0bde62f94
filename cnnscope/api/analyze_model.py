"""Trace one model: ``analyze`` (a ``ModelReport``), with the fallbacks it needs.

A spec is resolved and built (meta device first), then traced where it lives; a
data-dependent op sends the trace to the CPU with seeded random weights, and an input
too small for the network becomes one error naming the smallest square input that
fits and the first layer it no longer fills.
"""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any, Iterable, Sequence

import torch
from torch import nn

import cnnscope.thirdparty as thirdparty
from cnnscope.build import BUILD_META, build_path
from cnnscope.errors import (
    DataDependentError,
    InputTooSmallError,
    InvalidOptionError,
    TraceError,
)
from cnnscope.models import ModelSource, module_input_size, resolve
from cnnscope.trace.records import ModelReport
from cnnscope.trace.sizes import (
    DEFAULT_INPUT,
    as_input_sizes,
    check_batch,
    check_elements,
    check_fits,
    size_text,
    smallest_spatial_size,
    too_small_message,
)
from cnnscope.trace.standins import meta_copy, meta_stand_ins, module_device
from cnnscope.trace.tracer import TRACE_LOCK, resolve_device, trace_module
from cnnscope.trace.tracer import trace_module as _trace_module
from cnnscope.usercode import user_code


def analyze(
    model: str | nn.Module | ModelSource,
    input_size: tuple[int, ...] | str | None = None,
    batch: int = 1,
    *,
    device: str | torch.device | None = None,
    train: bool = False,
    counter: str = "cnnscope",
    backward: bool | None = None,
    freeze: Sequence[str] = (),
    detections: str = "caps",
    **model_kwargs: Any,
) -> ModelReport:
    """Trace a model once and return its per-layer records and totals.

    ``model`` is a zoo name (``"resnet50"``), any spec ``resolve`` accepts, or an
    ``nn.Module``. ``input_size`` is the per-sample shape (C, CxL, CxHxW or CxTxHxW),
    as a tuple or ``"3x224x224"``, or a list of them, one per positional forward
    argument (``[(3, 224, 224), (1, 224, 224)]``). Default: the model's own; its
    factory's ``example_inputs(batch)`` when it has one (tensors, a tuple of arguments,
    or a dict passed as one argument); else 3x224x224. ``device`` None means the meta device: nothing is allocated, and a
    module that lives elsewhere is traced with meta stand-ins swapped in for its
    parameters and buffers, and its own swapped back (its weights are never read,
    copied or changed; see ``meta_stand_ins``). ``counter="fvcore"`` counts with fvcore
    instead, as a cross-check. ``backward`` (default: ``train``) also counts the backward
    pass per layer from the ops autograd runs (``cnnscope.trace.backward``); ``freeze``
    lists module prefixes (``"layer1"``) whose parameters are frozen first (a model name
    or factory only: a built module is never changed). Keyword arguments go to the
    model's builder. ``detections`` ("caps" or "data") is how a torchvision detection
    model is counted: at its configured caps, whatever the weights (the default; see
    ``thirdparty.detection_caps``), or with what its random weights keep.
    """
    check_batch(batch)
    if detections not in ("caps", "data"):
        raise InvalidOptionError(f"detections={detections!r} is not caps or data",
                                 "use caps (the default: counts at the configured caps) or data")
    backward = train if backward is None else backward
    input_size = _input_sizes(input_size)
    dev = resolve_device(device)
    if isinstance(model, nn.Module):
        if model_kwargs:
            raise InvalidOptionError("keyword arguments need a model name or factory, "
                                     "not a built nn.Module")
        if counter != "cnnscope":
            raise InvalidOptionError(f"counter={counter!r} needs a model name or factory, "
                                     "not a built nn.Module")
        if freeze:
            raise InvalidOptionError("freeze needs a model name or factory, not a built "
                                     "nn.Module", "call requires_grad_(False) on its layers")
        example = getattr(model, "example_inputs", None) if input_size is None else None
        size = tuple(input_size or module_input_size(model) or DEFAULT_INPUT)
        check_elements(size, batch)
        with user_code(f"forward pass of {type(model).__name__}"):
            return _trace_instance(model, size, batch, dev, train, type(model).__name__,
                                   example if callable(example) else None, backward=backward,
                                   detections=detections)
    source = model if isinstance(model, ModelSource) else resolve(model, **model_kwargs)
    example = source.example_inputs if input_size is None else None
    size = tuple(input_size or source.input_size or DEFAULT_INPUT)
    check_elements(size, batch)
    if dev.type != "meta" and counter == "cnnscope" and example is None:
        check_fits_on(source, size, batch, dev)
    with source.contained():
        return _analyze_source(source, size, batch, dev, train, counter, backward, tuple(freeze),
                               example, detections)


def check_fits_on(source: ModelSource, size: tuple[int, ...], batch: int,
                  device: torch.device) -> None:
    """Before allocating on a real device: trace on meta (free) and refuse a run whose
    input, largest layer output and weights alone exceed the free memory."""
    report = analyze(source, size, batch)
    itemsize = 4  # float32: the dtype every zoo model and the timed runs start from
    largest = max((r.activations for r in report.layers), default=0)
    inputs = sum(batch * math.prod(s) for s in as_input_sizes(size))
    need = (inputs + largest + report.totals.params) * itemsize
    check_fits(need, device, f"{report.model} at {size_text(size)}, batch {batch},")


def _analyze_source(source: ModelSource, size: tuple, batch: int, dev: torch.device,
                    train: bool, counter: str, backward: bool, freeze: tuple[str, ...],
                    example: Any, detections: str = "caps") -> ModelReport:
    if counter == "fvcore":
        from cnnscope.trace.fvcore_counter import fvcore_report

        if example is not None or not all(isinstance(n, int) for n in size):
            raise InvalidOptionError("--counter fvcore takes one input tensor",
                                     "use the default counter for several inputs")

        return fvcore_report(source, size, batch)
    net = source.build(dev)
    if freeze:
        from cnnscope.trace.backward import freeze as freeze_params

        freeze_params(net, freeze)
    try:
        report = _trace_instance(net, size, batch, dev, train, source.name, example,
                                 backward=backward)
        return _with_paths(report, build_path(net))
    except DataDependentError as err:
        if dev.type != "meta":
            raise
        return trace_on_cpu(source, size, batch, train, err.op, example, detections)
    except InputTooSmallError as err:
        if example is not None or len(size) != 3 or not all(isinstance(n, int) for n in size):
            raise  # the smallest-square search is for one CxHxW image
        smallest = smallest_input(source, size[0], net=net)
        fixed = None
        if smallest is not None and not _traces(net, (size[0], smallest, smallest)):
            # Feature maps fit from `smallest` up, but a fixed classifier (no adaptive
            # pooling) accepts only the default size: say so rather than send the user to
            # a size that fails next.
            fixed = source.input_size
        err = too_small_message(err, size[0], smallest, fixed)
        # Name the first torch.nn layer whose window the map no longer fills, with its
        # output-size arithmetic (one more meta pass, only on this error path).
        from cnnscope.api.too_small import explain_too_small

        raise (explain_too_small(source, size, err) or err) from None


DATA_DEPENDENT_NOTE = (
    "counts depend on the input and the weights: the data-dependent op {op} needs real "
    "values, so the model was traced on the CPU with random weights (seed 0); layers after "
    "it (detection heads: boxes kept by score and NMS) ran on what those weights gave.")


DATA_DEPENDENT_NOTE_OWN = (
    "counts depend on the input: the data-dependent op {op} needs real values, so the "
    "module was traced where it lives ({where}) with its own weights on a random input.")


def _with_paths(report: ModelReport, path: str, data_dependent: tuple[str, ...] = ()) -> ModelReport:
    import dataclasses

    return dataclasses.replace(report, build_path=path or report.build_path or BUILD_META,
                               data_dependent=data_dependent or report.data_dependent)


def _input_sizes(input_size: Any) -> Any:
    """None, one per-sample size, or a tuple of sizes (several forward arguments)."""
    if input_size is None:
        return None
    from cnnscope.errors import InvalidInputSizeError
    from cnnscope.trace.sizes import as_input_sizes

    try:
        sizes = as_input_sizes(input_size)
    except (TypeError, ValueError):
        raise InvalidInputSizeError(f"input size {input_size!r} is not a shape",
                                    "give e.g. (3, 224, 224), '3x224x224' or a list of them") from None
    for s in sizes:
        if not 1 <= len(s) <= 4 or any(n < 1 for n in s):
            raise InvalidInputSizeError(
                f"input size {'x'.join(map(str, s))} is not C, CxL, CxHxW or CxTxHxW",
                "every dimension must be >= 1, e.g. 3x224x224")
    return sizes[0] if len(sizes) == 1 else sizes


def trace_on_cpu(source: ModelSource, size: tuple[int, ...], batch: int, train: bool,
                 op: str, example_inputs: Any = None, detections: str = "caps") -> ModelReport:
    """The fallback for a data-dependent op on meta: build with random weights, trace on CPU.

    The weights come from a fixed seed (0) without touching the caller's random state, so
    two runs give the same counts.
    """
    import dataclasses

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = source.build("cpu")
        report = _trace_instance(net, size, batch, torch.device("cpu"), train, source.name,
                                 example_inputs, detections=detections)
    notes = report.notes if thirdparty.CAPS_NOTE in report.notes else (
        *report.notes, DATA_DEPENDENT_NOTE.format(op=op))
    return dataclasses.replace(report, build_path="cpu-random-init", data_dependent=(op,),
                               notes=notes)


def _trace_instance(module: nn.Module, size: tuple[int, ...], batch: int, dev: torch.device,
                    train: bool, name: str, example_inputs: Any = None, *,
                    backward: bool = False, detections: str = "caps") -> ModelReport:
    """Trace a built module on ``dev`` without changing it (hooks are temporary)."""
    import dataclasses

    caps = detections == "caps" and thirdparty.is_detection(module)
    with TRACE_LOCK:  # where it lives must not change (another thread's swap) until done
        with thirdparty.detection_caps(module) if caps else contextlib.nullcontext():
            report = _trace_where_it_lives(module, size, batch, dev, train, name,
                                           example_inputs, backward)
    if caps:
        report = dataclasses.replace(report, notes=(*report.notes, thirdparty.CAPS_NOTE))
    return report


def _trace_where_it_lives(module: nn.Module, size: tuple[int, ...], batch: int,
                          dev: torch.device, train: bool, name: str,
                          example_inputs: Any = None, backward: bool = False) -> ModelReport:
    import functools

    trace_module = functools.partial(_trace_module, example_inputs=example_inputs,
                                     backward=backward)
    where = module_device(module)
    if where is None or (where.type == dev.type and dev.index in (None, where.index)):
        return trace_module(module, size, batch, model_name=name, device=where or dev, train=train)
    if dev.type != "meta":
        raise InvalidOptionError(
            f"{name} lives on {where}, not on {dev}",
            f"move it first (model.to('{dev}')) or trace on the meta device (device=None)",
        )
    try:
        with meta_stand_ins(module):
            return trace_module(module, size, batch, model_name=name, device=dev, train=train)
    except DataDependentError as err:
        # Its own weights are real: trace it where it lives, as the CPU fallback would.
        import dataclasses

        report = trace_module(module, size, batch, model_name=name, device=where, train=train)
        notes = report.notes if thirdparty.CAPS_NOTE in report.notes else (
            *report.notes, DATA_DEPENDENT_NOTE_OWN.format(op=err.op, where=where))
        return dataclasses.replace(report, data_dependent=(err.op,), notes=notes)
    except TraceError as err:
        if isinstance(err, InputTooSmallError) or err.hint:
            raise
        if _SHAPE_ERROR.search(err.message):  # the input does not fit: no device would help
            raise TraceError(err.message, "pass the input size the model was built for: "
                             "input_size=(C, H, W) (on the command line --input CxHxW)"
                             ) from None
        raise TraceError(err.message, (
            f"if the module keeps tensors that are not parameters or buffers, trace it "
            f"where it lives: device='{where}'")) from None


# A failure caused by the input's shape (a window or patch size that does not divide the
# feature map, a fixed sequence length): the input size is what to change.
_SHAPE_ERROR = re.compile(
    r"divisible|must match|doesn't match|does not match|size of tensor|sizes? mismatch|"
    r"expected (?:input|size|shape)|input (?:size|shape|image size|height|width)|"
    r"shape '\[|invalid for input of size|img_size|image size", re.IGNORECASE)


def _traces(net: nn.Module, size: tuple[int, ...]) -> bool:
    try:
        with meta_stand_ins(net):  # probe on meta even when analyze ran on a real device
            trace_module(net, size, 1)
    except Exception:  # noqa: BLE001 - any failure means "does not trace at this size"
        return False
    return True


def smallest_input(source: ModelSource | str, channels: int | None = None, *,
                   net: nn.Module | None = None) -> int | None:
    """Smallest square side the network accepts without a feature map vanishing (meta)."""
    src = source if isinstance(source, ModelSource) else resolve(source)
    c = channels or (src.input_size or DEFAULT_INPUT)[0]
    model = net if net is not None else src.build("meta")
    if (module_device(model) or torch.device("meta")).type != "meta":
        model = meta_copy(model)

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


def resolve_all(models: Iterable[str | nn.Module | ModelSource],
                model_kwargs: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
                ) -> list[nn.Module | ModelSource]:
    """Resolve every spec first: a bad name among several fails before any tracing.

    ``model_kwargs`` is one dict for every model, or a list with one dict per model.
    """
    models = list(models)
    if model_kwargs is None or isinstance(model_kwargs, dict):
        per_model = [dict(model_kwargs or {}) for _ in models]
    else:
        per_model = [dict(k) for k in model_kwargs]
        if len(per_model) != len(models):
            raise InvalidOptionError("model_kwargs needs one dict per model")
    out: list[nn.Module | ModelSource] = []
    for m, kw in zip(models, per_model):
        if isinstance(m, (nn.Module, ModelSource)):
            if kw:
                raise InvalidOptionError("keyword arguments need a model name or factory, "
                                         "not a built nn.Module or ModelSource")
            out.append(m)
        else:
            out.append(resolve(m, **kw))
    return out
