"""The one forward pass that measures everything.

``trace_module`` runs a model once under a ``TorchDispatchMode`` that sees every aten op,
with each module's ``forward`` wrapped for the length of the trace to know where each op
happens. By default the model lives on the meta device: shapes propagate, no weights are
allocated and nothing is computed, so any input size or batch costs the same. On meta, a
leaf layer already measured with the same configuration and input layout is replayed
from its record (``LeafMemo``) instead of run again.

It emits one ``LayerRecord`` per call of a leaf ``torch.nn`` layer (Conv2d, BatchNorm2d,
ReLU...: its cost is the sum of the ops it ran) and one per op called outside such a
layer (the residual ``add``, a ``cat``, a ``matmul`` in a custom module). Each record
names the records that produced its inputs, so the records form the dataflow graph the
receptive-field analysis walks.
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Any

import torch
from torch import nn

from cnnscope.errors import (
    DataDependentError,
    FormulaError,
    InputTooSmallError,
    TraceError,
)
from cnnscope.ops.names import op_name  # noqa: F401 - re-exported
from cnnscope.ops.registry import lookup
from cnnscope.trace.attention import one_op_attention
from cnnscope.trace.blocks import BLOCKS  # noqa: F401 - re-exported (tests inspect it)
from cnnscope.trace.dispatch import (
    DispatchCounter,
    patch_forwards,
    restore_forwards,
    TraceState,
)
from cnnscope.trace.memo import clear_memo  # noqa: F401 - re-exported
from cnnscope.trace.meta import paused_gc
from cnnscope.trace.records import MODEL_INPUT, LayerRecord, ModelReport, Totals
from cnnscope.trace.sizes import as_input_sizes, check_elements, size_text
from cnnscope.trace.tensors import shape_of, tensors_in

# ---------------------------------------------------------------------- public API

# Where a device name is checked (bench checks its --device without importing the tracer).
from cnnscope.trace.devices import resolve_device  # noqa: E402,F401 - re-exported


def trace_module(
    model: nn.Module,
    input_size: tuple[int, ...],
    batch: int = 1,
    *,
    model_name: str | None = None,
    device: str | torch.device | None = None,
    train: bool = False,
    memoize: bool = True,
    backward: bool = False,
    example_inputs: Any = None,
) -> ModelReport:
    """Run ``model`` once on a (batch, *input_size) input and measure every layer.

    ``input_size`` is one per-sample shape (C, CxL, CxHxW, CxTxHxW...) or a tuple of them,
    one per positional forward argument. ``example_inputs(batch)``, when given, makes the
    inputs instead: a tensor, a tuple of positional arguments, or a dict (passed as one
    argument); its tensors are moved to ``device``.

    The model must already live on ``device`` (meta by default: build it under
    ``with torch.device("meta"):``). ``train=True`` traces training-mode behaviour
    (batch statistics, dropout, auxiliary heads). ``memoize=False`` runs every leaf
    layer's forward even when an identical layer on an identical input was already
    measured (the tests compare both ways).
    """
    dev = resolve_device(device)
    # One trace at a time per process: a trace swaps each module's forward in and out,
    # and two threads tracing one model would restore each other's wrappers. Tracing is
    # Python-bound anyway (the GIL), so this costs no throughput.
    if example_inputs is None:
        for size in as_input_sizes(input_size):
            check_elements(tuple(size), batch)
    with TRACE_LOCK:
        return _trace(model, input_size, batch, model_name, dev, train, memoize, backward,
                      example_inputs)


# One trace at a time per process, re-entrant (a model's forward may itself call analyze).
# Public: code that swaps a module's tensors (standins.meta_stand_ins) takes turns with traces.
TRACE_LOCK = threading.RLock()


def _model_inputs(input_size: Any, batch: int, dev: torch.device,
                  example_inputs: Any) -> tuple[tuple, tuple[tuple[int, ...], ...]]:
    """The forward's positional arguments and the per-sample shapes of its input tensors."""
    if example_inputs is not None:
        with torch.device(dev):
            made = example_inputs(batch)
        moved = _to_device(made, dev)
        args = moved if isinstance(moved, tuple) else \
            tuple(moved) if isinstance(moved, list) else (moved,)
        return args, tuple(shape_of(t)[1:] for t in tensors_in(args))
    sizes = as_input_sizes(input_size)
    if dev.type == "meta":
        args = tuple(torch.empty((batch, *s), device=dev) for s in sizes)
    else:
        args = tuple(torch.randn((batch, *s), device=dev) for s in sizes)
    return args, sizes


def _to_device(obj: Any, dev: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj if obj.device == dev else obj.to(dev)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(o, dev) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_device(v, dev) for k, v in obj.items()}
    return obj


def _trace(model: nn.Module, input_size: Any, batch: int, model_name: str | None,
           dev: torch.device, train: bool, memoize: bool, backward: bool = False,
           example_inputs: Any = None) -> ModelReport:
    modules = list(model.named_modules())
    params: dict[int, tuple[int, bool]] = {}
    trainable_leaves: list[torch.Tensor] = []
    for _, m in modules:  # unique parameters: shared weights counted once
        for p in m._parameters.values():
            if p is not None and id(p) not in params:
                params[id(p)] = (p.numel(), p.requires_grad)
                if p.requires_grad:
                    trainable_leaves.append(p)
    # The memo replays a leaf layer from its shapes alone, which is only right when
    # nothing is computed: on meta.
    # A replayed layer runs no ops, so it would leave no autograd graph behind: no memo
    # when the backward is counted.
    state = TraceState(params, memoize=memoize and dev.type == "meta" and not backward)
    if state.memo is not None:
        state.memo.index_subtrees(modules)
    # Each module's own flag is restored afterwards (a user may keep some layers in eval).
    modes = [(m, m.training) for _, m in modules]
    if any(flag != train for _, flag in modes):
        if all(type(m).train is nn.Module.train for _, m in modules):
            for m, _ in modes:  # what Module.train does, without its per-module overhead
                object.__setattr__(m, "training", train)
        else:
            model.train(train)  # a module with its own train() (e.g. freezing batch norm)
    label = model_name or type(model).__name__
    labeller = None
    if backward:
        from cnnscope.trace.backward import NodeLabeller

        labeller = NodeLabeller(state)
    try:
        xs, sizes = _model_inputs(input_size, batch, dev, example_inputs)
    except Exception as exc:  # noqa: BLE001 - the user's example_inputs failed
        raise TraceError(f"example_inputs({batch}) of {label} raised {type(exc).__name__}: "
                         f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
                         "it must return a tensor, a tuple of arguments or a dict") from None
    patched = patch_forwards(modules, state)
    state.mark_output(tensors_in(xs), MODEL_INPUT)
    try:
        # Attention is one record on every device, whichever kernel runs it.
        attention = one_op_attention(state.run_group)
        with (torch.enable_grad() if backward else torch.no_grad()), paused_gc(), attention, \
                DispatchCounter(state), (labeller or contextlib.nullcontext()):
            output = model(*xs)
    except FormulaError:  # already names the op and the formula
        raise
    except Exception as exc:  # turn what the input caused into a user error
        raise _explain_failure(exc, state, label, sizes) from None
    finally:
        restore_forwards(patched)
        for module, flag in modes:
            if module.training != flag:
                object.__setattr__(module, "training", flag)  # a plain attribute: skip nn's checks

    records = tuple(state.records)
    notes = []
    bw = None
    if labeller is not None:
        records, bw = _count_backward(records, output, trainable_leaves, labeller, notes)
    total_params = sum(n for n, _ in params.values())
    trainable = sum(n for n, t in params.values() if t)
    visible = [r for r in records if r.kind != "shape"]
    totals = Totals(
        params=total_params,
        trainable_params=trainable,
        macs=sum(r.macs for r in records),
        flops=sum(r.flops for r in records),
        activations=sum(r.activations for r in visible),
        backward_macs=bw.total_macs if bw is not None else None,
        backward_flops=bw.total_flops if bw is not None else None,
    )
    unused = total_params - sum(r.params for r in records)
    if unused:
        notes.append(f"{unused:,} parameters belong to layers this forward pass did not run "
                     "(e.g. auxiliary heads in eval mode); they are in the params total.")
    return ModelReport(
        model=label,
        input_size=tuple(sizes[0]) if sizes else (),
        input_sizes=tuple(tuple(z) for z in sizes),
        batch=batch,
        device=str(dev),
        layers=records,
        totals=totals,
        output_shapes=tuple(shape_of(t) for t in tensors_in(output)),
        unsupported=tuple(sorted(state.unsupported.items())),
        unused_params=unused,
        notes=tuple(notes),
        module_types=tuple((n, type(m).__name__) for n, m in modules),
        output_producers=state.producers(tensors_in(output)),
    )


def _count_backward(records: tuple[LayerRecord, ...], output: Any, leaves: list[torch.Tensor],
                    labeller, notes: list[str]):
    """Records with their counted backward work, and the count (None if it failed)."""
    from dataclasses import replace

    from cnnscope.trace.backward import UNATTRIBUTED, count_backward

    try:
        bw = count_backward(tensors_in(output), leaves, labeller.nodes)
    except Exception as exc:  # noqa: BLE001 - the forward counts stand; say why bwd is absent
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        notes.append(f"backward not counted: autograd failed on this model ({text})")
        return records, None
    records = tuple(replace(r, backward_macs=bw.macs.get(r.name, 0),
                            backward_flops=bw.flops.get(r.name, 0)) for r in records)
    if bw.flops.get(UNATTRIBUTED):
        notes.append(f"backward: {bw.flops[UNATTRIBUTED]:,} FLOPs ran in autograd nodes no "
                     "layer created; they are in the backward totals only")
    if bw.unsupported:
        ops = ", ".join(f"{op} x{n}" for op, n in sorted(bw.unsupported.items()))
        notes.append(f"backward ops without a cost formula (not counted): {ops}")
    return records, bw


_DATA_DEPENDENT = re.compile(
    r"data-dependent|Cannot copy out of meta tensor|cannot be called on meta tensors|"
    r"meta_nonzero_assume_all_nonzero|_local_scalar_dense", re.IGNORECASE)

_TOO_SMALL = re.compile(
    r"too small|smaller than|can't be greater than|cannot be greater|non-positive|"
    r"Output size is|output size .* is too small|negative dimension|Padding size should be",
    re.IGNORECASE,
)


def _explain_failure(exc: Exception, state: TraceState, model: str,
                     input_size: Any) -> Exception:
    size = size_text(input_size) if input_size else "its example inputs"
    layer, op = state.failed_at or (state.current_layer(), "?")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    known = lookup(op)  # the op registry knows which ops no meta kernel can shape
    if _DATA_DEPENDENT.search(f"{op} {exc}") or (known is not None and known.data_dependent):
        return DataDependentError(
            f"{model} runs a data-dependent op at layer {layer} ({op}): its output shape "
            f"depends on tensor values, which the meta device does not have",
            "trace with --device cpu (random weights; the counts then depend on the input)",
            op=op,
        )
    if isinstance(exc, TypeError) and re.search(r"positional argument|forward\(\)", text) \
            and layer in ("<model>", ""):
        return TraceError(f"{model} does not take input {size}: {text}",
                          "give one --input per positional argument of its forward(), or an "
                          "example_inputs(batch) function on its factory")
    if _TOO_SMALL.search(str(exc)):
        return InputTooSmallError(
            f"input {size} is too small for {model}: the feature map shrinks below the "
            f"window of layer {layer} ({op})",
            layer=layer,
        )
    if re.search(r"shapes cannot be multiplied|size mismatch|same reduction dim|mat1 and mat2", text):
        return TraceError(
            f"{model} does not accept input {size}: layer {layer} got a feature size it "
            f"was not built for ({text})",
            "its classifier is fixed to the default input size; use that size",
        )
    return TraceError(f"{model} failed at layer {layer} ({op}) on input {size}: {text}")
