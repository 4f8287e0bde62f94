"""The block memo: a custom module's records, replayed for an identical module (``Block``).

Subtree configurations are interned in ``TREE_IDS`` and recorded blocks kept in
``BLOCKS``, both shared by every meta trace of the process and emptied with the leaf
memo (see memo.py).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Protocol

import torch
from torch import nn

from cnnscope.trace.records import LayerRecord



class RecordingState(Protocol):
    """What a block's capture and replay read and write of the running trace (a
    ``dispatch.TraceState``), declared here: the dispatch module imports this one."""

    records: list[LayerRecord]
    params: dict[int, tuple[int, bool]]  # id(parameter) -> (numel, trainable)
    consumed: set[int]  # ids of parameters already charged to a record
    producer: dict[int, int]  # id(tensor) -> index of the record that produced it
    calls: dict[int, int]  # id(module) -> calls so far
    bases: dict[int, str]  # record index -> its name before de-duplication
    unsupported: Counter

    def unique_name(self, name: str) -> str: ...

    def mark_output(self, tensors: Any, index: int) -> None: ...

MISSING = object()
PLAIN = {int, float, bool, str, type(None)}

_NN_INTERNALS = frozenset({
    "training", "_parameters", "_buffers", "_non_persistent_buffers_set", "_backward_pre_hooks",
    "_backward_hooks", "_is_full_backward_hook", "_forward_hooks", "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
    "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks", "_modules", "forward",
})
_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def block_config(module: nn.Module) -> tuple | None:
    """What decides a module's behaviour on given input shapes, for replaying a whole block.

    Its class, training flag, every attribute that is a plain value (private ones too:
    custom code may branch on them), and the shapes of its parameters and buffers. None
    (never replayed) when an attribute is anything else (a list, a tensor, a function)
    or a hook is registered.
    """
    d = module.__dict__
    if any(d.get(h) for h in _HOOKS) or nn.modules.module._global_forward_hooks \
            or nn.modules.module._global_forward_pre_hooks:
        return None
    items = []
    for k, v in d.items():
        if k in _NN_INTERNALS:
            continue
        t = type(v)
        if t not in PLAIN:
            if t not in (tuple, list) or not PLAIN.issuperset(map(type, v)):
                return None
            v = (t, tuple(v))
        items.append((k, v))
    tensors = tuple((k, None if t is None else (t.shape, t.dtype, t.requires_grad))
                    for k, t in (*d["_parameters"].items(), *d["_buffers"].items()))
    return type(module), d.get("training"), tuple(items), tensors


def subtree_params(subtree: list[tuple[str, nn.Module]]) -> dict[int, None]:
    """Ids of the parameters of a subtree's modules, each once, in order."""
    out: dict[int, None] = {}
    for _, m in subtree:
        for p in m._parameters.values():
            if p is not None:
                out[id(p)] = None
    return out


# Subtree configurations -> small ids, and recorded blocks by (subtree id, input layouts):
# shared by every meta trace of the process and emptied with the layer memo.
TREE_IDS: dict[tuple, int] = {}
BLOCKS: dict[tuple, "Block"] = {}


class Block:
    """The records one call of a custom module made, replayed for an identical module.

    On the meta device a module whose whole subtree has the same classes, plain
    attributes and parameter shapes, called on inputs of the same layouts, records the
    same rows: ViT's 12 encoder blocks and ResNet-152's 36 conv4_x bottlenecks are traced
    once each and replayed. Only what can be replayed exactly is used: every record's
    inputs come from the block's own records or its input tensors, every name lies under
    the block's name, the block's parameters were all unclaimed and all claimed inside.

    Capturing is cheap (a slice of the records); the checks and the relative form are
    made on the first replay, so a block that never repeats costs almost nothing.
    """

    __slots__ = ("raw", "records", "bases", "calls", "unsupported", "params", "single",
                 "outputs", "valid")

    def __init__(self, raw: tuple, calls: tuple, unsupported: tuple, params: int,
                 single: bool, outputs: tuple) -> None:
        self.raw = raw  # (prefix, start, records, bases, in_producers) until prepared
        self.records: tuple[LayerRecord, ...] = ()  # relative names, remapped inputs
        self.bases: tuple[str | None, ...] = ()  # function records: their name base, relative
        self.calls = calls  # submodule (relative name) -> calls it made
        self.unsupported = unsupported
        self.params = params
        self.single = single
        # per output: ("arg", position) | ("rec", relative index, shape, stride, dtype)
        self.outputs = outputs
        self.valid: bool | None = None

    @staticmethod
    def capture(state: RecordingState, name: str, subtree: list, inputs: list, in_producers: tuple,
                start: int, out: Any, unsupported: Counter, params: dict) -> "Block | None":
        end = len(state.records)
        if end == start:
            return None
        claimed = 0
        for k in range(start, end):
            claimed += state.records[k].params
        sizes = state.params
        if claimed != sum(sizes[p][0] for p in params if p in sizes) \
                or not all(p in state.consumed for p in params):
            return None
        single = isinstance(out, torch.Tensor)
        outs = (out,) if single else out
        if not isinstance(outs, tuple) or not all(isinstance(t, torch.Tensor) for t in outs):
            return None
        layout = []
        for t in outs:
            alias = next((i for i, x in enumerate(inputs) if x is t), None)
            if alias is not None:
                layout.append(("arg", alias))
                continue
            p = state.producer.get(id(t))
            if p is None or p < start:
                return None
            layout.append(("rec", p - start, tuple(t.shape), tuple(t.stride()), t.dtype))
        calls = tuple((n, state.calls.get(id(m), 0)) for n, m in subtree)
        bases = state.bases
        raw = (f"{name}." if name else "", start, tuple(state.records[start:end]),
               tuple(bases.get(k) for k in range(start, end)), in_producers)
        return Block(raw, calls, tuple(unsupported.items()), claimed, single, tuple(layout))

    def prepare(self) -> bool:
        """Check the captured records can be replayed and make their relative form, once."""
        if self.valid is not None:
            return self.valid
        prefix, start, records, bases, in_producers = self.raw
        self.raw = None
        cut = len(prefix)
        rel, rel_bases = [], []
        self.valid = False
        for r, base in zip(records, bases):
            if prefix and not r.name.startswith(prefix):
                return False  # a shared module named elsewhere
            inputs_rel = []
            for i in r.inputs:
                if i >= start:
                    inputs_rel.append(("rec", i - start))
                elif i in in_producers:
                    inputs_rel.append(("arg", in_producers.index(i)))
                else:
                    return False  # it reads a tensor from outside its arguments
            if base is not None and prefix and not base.startswith(prefix):
                return False
            # replace(), not positional fields: every field a record gains is carried over.
            rel.append(dataclasses.replace(r, index=-1, name=r.name[cut:],
                                           inputs=tuple(inputs_rel)))
            rel_bases.append(base[cut:] if base is not None else None)
        self.records, self.bases, self.valid = tuple(rel), tuple(rel_bases), True
        return True

    def replay(self, state: RecordingState, name: str, subtree: list, inputs: list) -> Any:
        if len(subtree) != len(self.calls) or any(state.calls.get(id(m), 0) for _, m in subtree):
            return MISSING
        if not self.prepare():
            return MISSING
        params = subtree_params(subtree)
        if any(p in state.consumed for p in params) or \
                sum(state.params[p][0] for p in params if p in state.params) != self.params:
            return MISSING
        state.consumed.update(params)
        for (_, m), (_, n) in zip(subtree, self.calls):
            if n:
                state.calls[id(m)] = n
        prefix = f"{name}." if name else ""
        arg_producers = [state.producer.get(id(t)) for t in inputs]
        base_index = len(state.records)
        for r, b in zip(self.records, self.bases):
            ins = []
            for kind, j in r.inputs:
                if kind == "rec":
                    ins.append(base_index + j)
                else:
                    p = arg_producers[j]
                    if p is not None and p not in ins:
                        ins.append(p)
            rec_name = state.unique_name(prefix + b) if b is not None else prefix + r.name
            state.records.append(dataclasses.replace(r, index=len(state.records),
                                                     name=rec_name, inputs=tuple(ins)))
        if self.unsupported:
            state.unsupported.update(dict(self.unsupported))
        outs = []
        with torch._C._DisableTorchDispatch():
            for item in self.outputs:
                if item[0] == "arg":
                    outs.append(inputs[item[1]])
                    continue
                _, j, shape, stride, dtype = item
                t = torch.empty_strided(shape, stride, dtype=dtype, device="meta")
                state.mark_output((t,), base_index + j)
                outs.append(t)
        return outs[0] if self.single else tuple(outs)
