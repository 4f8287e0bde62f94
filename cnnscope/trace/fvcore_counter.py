"""``--counter fvcore``: the same model counted by fvcore, as an independent cross-check.

fvcore traces with ``torch.jit.trace``, which needs real tensors: the model is built on
the CPU with real (randomly initialised) weights, so this costs memory and time that the
default meta-device tracer does not. fvcore counts one multiply-add as one "flop" for
convolutions, linear layers and matmuls (our MACs), and adds its own rules for batch
norm, upsampling and adaptive pooling; those extra ops are reported under ``notes``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from cnnscope.ops.registry import fvcore_mac_operators
from cnnscope.trace.records import LayerRecord, ModelReport, Totals


class FvcoreSource(Protocol):
    """What the counter needs of a ``cnnscope.models.ModelSource`` (the layer above)."""

    name: str

    def build(self, device: str) -> nn.Module: ...

FVCORE_CONVENTION = (
    "fvcore: 1 per multiply-add of conv/linear/matmul (shown as MACs); its batch-norm, "
    "upsample and pooling counts are listed in the notes; FLOPs are not computed by fvcore "
    "(shown as 0). params: trainable + frozen nn.Parameters."
)


def fvcore_mac_total(by_operator: dict[str, int]) -> int:
    """Sum of fvcore's per-operator counts that are multiply-accumulates."""
    macs = fvcore_mac_operators()
    return sum(n for op, n in by_operator.items() if op in macs)


def fvcore_report(source: FvcoreSource, input_size: tuple[int, ...], batch: int) -> ModelReport:
    """Count ``source`` with fvcore's FlopCountAnalysis (real weights on the CPU)."""
    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    model = source.build("cpu").eval()
    x = torch.zeros((batch, *input_size))
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    by_module_op = analysis.by_module_and_operator()
    by_operator = analysis.by_operator()
    records = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue
        ops = by_module_op.get(name, Counter())
        own = list(module.parameters(recurse=False))
        records.append(LayerRecord(
            index=len(records), name=name, type=type(module).__name__, kind="module",
            inputs=(), input_shapes=(), output_shape=(),
            params=sum(p.numel() for p in own),
            trainable_params=sum(p.numel() for p in own if p.requires_grad),
            macs=fvcore_mac_total(ops), flops=0,
        ))
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    macs = fvcore_mac_operators()
    other = {op: n for op, n in by_operator.items() if op not in macs}
    notes = []
    if other:
        notes.append("fvcore counts outside MACs: " + ", ".join(f"{k} {v:,}" for k, v in sorted(other.items())))
    with torch.no_grad():
        out = model(x)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return ModelReport(
        model=source.name, input_size=tuple(input_size), batch=batch, device="cpu",
        layers=tuple(records),
        totals=Totals(params=params, trainable_params=trainable,
                      macs=fvcore_mac_total(by_operator), flops=0, activations=0),
        output_shapes=tuple(tuple(o.shape) for o in outs if isinstance(o, torch.Tensor)),
        unsupported=tuple(sorted(analysis.unsupported_ops().items())),
        counter="fvcore", convention=FVCORE_CONVENTION, notes=tuple(notes),
    )


@dataclass(frozen=True)
class FvcoreCounts:
    """fvcore's counts of one model, per module and operator, for the side-by-side check.

    ``own`` maps each module's qualified name ("" is the model) to fvcore's counts of the
    ops run in that module's own forward (not its children's); ``skipped`` likewise to the
    ops fvcore has no handler for (counted as 0 by fvcore). Module names are those of
    ``named_modules()``, so repeated calls of one module are summed under its name.
    """

    model: str
    params: int
    trainable_params: int
    own: dict[str, dict[str, int]]
    skipped: dict[str, dict[str, int]]
    order: tuple[str, ...]  # module names in definition order

    @property
    def total(self) -> int:
        return sum(sum(ops.values()) for ops in self.own.values())

    @property
    def mac_total(self) -> int:
        return sum(fvcore_mac_total(ops) for ops in self.own.values())


def fvcore_counts(source: FvcoreSource, input_size: tuple[int, ...], batch: int) -> FvcoreCounts:
    """Run fvcore's FlopCountAnalysis on ``source`` (real weights on the CPU), per module."""
    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    model = source.build("cpu").eval()
    x = torch.zeros((batch, *input_size))
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    by_module = analysis.by_module_and_operator()
    names = [name for name, _ in model.named_modules()]
    children = {name: [f"{name}.{c}" if name else c for c, _ in module.named_children()]
                for name, module in model.named_modules()}

    def own(table) -> dict[str, dict[str, int]]:
        out = {}
        for name in names:
            counts = Counter(table(name))
            for child in children[name]:
                counts.subtract(table(child))
            kept = {op: n for op, n in counts.items() if n}
            if kept:
                out[name] = kept
        return out

    return FvcoreCounts(
        model=source.name,
        params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        own=own(lambda n: by_module.get(n, Counter())),
        skipped=own(lambda n: analysis.unsupported_ops(n)),
        order=tuple(names),
    )
