"""Dispatch counting: the state one trace shares between module wrappers and the
``TorchDispatchMode`` that sees every aten op, and the wrappers themselves.

``TraceState.on_op`` charges each op to the leaf torch.nn layer running it, or makes it a
record of its own; ``run_leaf`` and ``run_block`` replay what the memos already know.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from math import prod
from typing import Any, Iterable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import cnnscope.patches as patches
from cnnscope.ops.cost import TensorShape
from cnnscope.ops.entry import OpEntry
from cnnscope.ops.names import op_name
from cnnscope.ops.registry import has_module_formula, lookup, meta_shortcut, module_cost, op_cost
from cnnscope.trace.blocks import MISSING, PLAIN, Block, subtree_params
from cnnscope.trace.memo import LeafMemo
from cnnscope.trace.records import LayerRecord
from cnnscope.trace.tensors import (
    is_view_op,
    tensor_bytes,
    shape_args,
    shape_of,
    tensors_in,
)


# torch.nn layers with children that are only parameter holders they call functionally
# (MultiheadAttention's out_proj): one record each, like a childless layer. On the CPU in
# eval MultiheadAttention runs one fused op and on meta some 30 ops: traced through, its
# rows would differ per device.
_ATOMIC_WITH_CHILDREN = (nn.MultiheadAttention,)


def is_leaf_nn_layer(module: nn.Module) -> bool:
    # Only torch's own layers are atomic: their meaning is known. A custom module is
    # traced through, so its ops (a crop, a gate) stay visible, unless the user gave
    # its class a formula (register_formula).
    return (not module._modules and type(module).__module__.startswith("torch.nn")) \
        or type(module) in _ATOMIC_WITH_CHILDREN or has_module_formula(module)


@dataclass
class _Pending:
    """A record under construction (a leaf layer whose forward is running)."""

    name: str
    type: str
    kind: str
    inputs: tuple[int, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    call_index: int = 0
    params: int = 0
    trainable: int = 0
    macs: int = 0
    flops: int = 0
    geometry: dict[str, Any] = field(default_factory=dict)
    unsupported: list[str] = field(default_factory=list)
    read_bytes: int = 0  # input activations + parameters, each tensor once (see tensor_bytes)
    ops: int = 0  # aten ops the layer ran; none (Identity) means it moved nothing


class TraceState:
    """Everything the forward wrappers and the dispatch mode share during one pass."""

    def __init__(self, param_names: dict[int, tuple[int, bool]], *, memoize: bool = False):
        self.records: list[LayerRecord] = []
        self.producer: dict[int, int] = {}  # id(tensor) -> record index (or MODEL_INPUT)
        self.keep_alive: list[torch.Tensor] = []  # ids stay unique while we hold them
        self.param_of: dict[int, int] = {}  # id(tensor) -> id of the parameter it views
        self.params = param_names  # id(parameter) -> (numel, trainable)
        self.consumed: set[int] = set()
        self.calls: dict[int, int] = {}  # id(module) -> calls so far
        self.stack: list[str] = []  # qualified names of the modules running now
        self.leaf: _Pending | None = None  # the leaf nn layer running now, if any
        self.leaf_module: nn.Module | None = None
        self.leaf_custom = False  # the running leaf has a user formula (register_formula)
        self.bases: dict[int, str] = {}  # record index -> name before unique_name's suffix
        self.name_counts: Counter[str] = Counter()
        self.unsupported: Counter[str] = Counter()
        self.failed_at: tuple[str, str] | None = None  # (layer name, op) of a failing op
        # Leaf-layer results by (layer configuration, input shapes): see LeafMemo.
        self.memo: LeafMemo | None = LeafMemo() if memoize else None
        for pid in param_names:
            self.param_of[pid] = pid

    # ------------------------------------------------------------------ bookkeeping

    def mark_output(self, tensors: Iterable[torch.Tensor], index: int) -> None:
        for t in tensors:
            self.producer[id(t)] = index
            self.keep_alive.append(t)

    def producers(self, tensors: Iterable[torch.Tensor]) -> tuple[int, ...]:
        seen: list[int] = []
        for t in tensors:
            p = self.producer.get(id(t))
            if p is not None and p not in seen:
                seen.append(p)
        return tuple(seen)

    def unique_name(self, base: str) -> str:
        n = self.name_counts[base]
        self.name_counts[base] += 1
        return base if n == 0 else f"{base}_{n}"

    def claim_params(self, pids: Iterable[int]) -> tuple[int, int]:
        total = trainable = 0
        for pid in pids:
            if pid in self.consumed or pid not in self.params:
                continue
            self.consumed.add(pid)
            numel, is_trainable = self.params[pid]
            total += numel
            trainable += numel if is_trainable else 0
        return total, trainable

    def finish(self, p: _Pending, outputs: list[torch.Tensor]) -> int:
        g = p.geometry
        extra = g.get("extra") or {}
        out_shapes = [shape_of(t) for t in outputs]
        if p.type.startswith("Adaptive") and out_shapes:
            # AdaptiveAvgPool2d(1) runs as a mean; its geometry is its output size.
            extra = {"adaptive": True, "output_size": out_shapes[0][2:]}
        record = LayerRecord(
            index=len(self.records),
            name=p.name,
            type=p.type,
            kind=p.kind,
            inputs=p.inputs,
            input_shapes=p.input_shapes,
            output_shape=out_shapes[0] if out_shapes else (),
            params=p.params,
            trainable_params=p.trainable,
            macs=p.macs,
            flops=p.flops,
            activations=sum(prod(s) for s in out_shapes),
            bytes_moved=(p.read_bytes + tensor_bytes(outputs)) if p.ops else 0,
            call_index=p.call_index,
            kernel_size=g.get("kernel_size"),
            stride=g.get("stride"),
            padding=g.get("padding"),
            dilation=g.get("dilation"),
            groups=g.get("groups"),
            extra=tuple(sorted(extra.items())),
            unsupported=tuple(sorted(set(p.unsupported))),
        )
        self.records.append(record)
        self.mark_output(outputs, record.index)
        return record.index

    # ------------------------------------------------------------------ module calls

    def traced_forward(self, name: str, module: nn.Module, forward):
        """``module.forward`` wrapped to keep the module stack and measure leaf layers.

        An instance attribute instead of global hooks: with no hooks registered, PyTorch
        takes its fast call path, and a leaf layer can skip its forward entirely when the
        memo already knows the answer.
        """
        leaf = is_leaf_nn_layer(module)

        def forward_traced(*args, **kwargs):
            self.stack.append(name)
            if leaf and self.leaf is None:
                out = self.run_leaf(name, module, forward, args, kwargs)
            elif self.memo is not None and self.leaf is None:
                out = self.run_block(name, module, forward, args, kwargs)
            else:
                out = forward(*args, **kwargs)
            self.stack.pop()  # not on an exception: the failure names the layer that raised
            return out

        return forward_traced

    def run_block(self, name: str, module: nn.Module, forward, args: tuple, kwargs: dict) -> Any:
        """A custom module's call: replayed when an identical block already ran (see Block).

        Positional arguments must be tensors; keyword arguments tensors or plain values
        (``mask=None``), which are part of the key.
        """
        memo = self.memo
        inputs = list(args)
        if not inputs or not all(isinstance(t, torch.Tensor) for t in inputs):
            return forward(*args, **kwargs)
        plain = ()
        if kwargs:
            described = []
            for k in sorted(kwargs):
                v = kwargs[k]
                if isinstance(v, torch.Tensor):
                    inputs.append(v)
                    described.append((k, None))
                elif type(v) in PLAIN:
                    described.append((k, (v,)))
                else:
                    return forward(*args, **kwargs)
            plain = tuple(described)
        key = memo.block_key(module, inputs)
        if key is None:
            return forward(*args, **kwargs)
        key = (*key, plain)
        known = memo.blocks.get(key)
        subtree = memo.subtree(module)
        if known is not None:
            out = known.replay(self, name, subtree, inputs)
            if out is not MISSING:
                return out
        # Run it for real; keep what it recorded when the call can be replayed exactly.
        fresh = all(self.calls.get(id(m), 0) == 0 for _, m in subtree)
        params = subtree_params(subtree)
        fresh = fresh and not any(pid in self.consumed for pid in params)
        start = len(self.records)
        before = Counter(self.unsupported)
        in_producers = tuple(self.producer.get(id(t)) for t in inputs)
        out = forward(*args, **kwargs)
        if fresh and known is None:
            block = Block.capture(self, name, subtree, inputs, in_producers, start, out,
                                   self.unsupported - before, params)
            if block is not None:
                memo.blocks[key] = block
        return out

    def run_leaf(self, name: str, module: nn.Module, forward, args: tuple, kwargs: dict) -> Any:
        call = self.calls.get(id(module), 0)
        self.calls[id(module)] = call + 1
        inputs = [args[0]] if len(args) == 1 and isinstance(args[0], torch.Tensor) else tensors_in(args)
        custom = has_module_formula(module)
        own = module._parameters
        if custom or module._modules:  # a user formula's module (or MultiheadAttention)
            # owns its submodules' parameters too
            params, trainable = self.claim_params(id(p) for p in module.parameters())
        else:
            params, trainable = self.claim_params(
                id(p) for p in own.values() if p is not None) if own else (0, 0)
        record_name = name if call == 0 else f"{name}#{call + 1}"
        producers = self.producers(inputs)
        input_shapes = tuple(shape_of(t) for t in inputs)
        key = self.memo.key(module, args, kwargs, inputs) \
            if self.memo is not None and not custom else None
        known = self.memo.get(key) if key is not None else None
        if known is not None:
            record = known.replay(len(self.records), record_name, producers, input_shapes,
                                  params, trainable, call)
            self.records.append(record)
            if known.unsupported:
                self.unsupported.update(known.unsupported)
            out = known.outputs(inputs)
            self.mark_output((out,) if known.single else out, record.index)
            return out
        pending = _Pending(name=record_name, type=type(module).__name__, kind="module",
                           inputs=producers, input_shapes=input_shapes, call_index=call,
                           params=params, trainable=trainable,
                           # Every call reads its weights, also a shared layer's second call
                           # (whose params are 0: they were counted at the first).
                           read_bytes=tensor_bytes(inputs) + tensor_bytes(
                               module.parameters() if module._modules else own.values()))
        layer = lookup(pending.type)
        if layer is not None and layer.no_window:
            pending.geometry = {"extra": {"size": getattr(module, "size", None)}}
        elif module._modules:  # no window; its first op differs per device (see above)
            pending.geometry = {"extra": {}}
        self.leaf, self.leaf_module = pending, module
        if custom:
            self.leaf_custom = True
            try:
                out = forward(*args, **kwargs)
            finally:
                self.leaf_custom = False
            cost = module_cost(module, input_shapes, [shape_of(t) for t in tensors_in(out)])
            pending.macs, pending.flops = cost.macs, cost.flops
        else:
            out = forward(*args, **kwargs)
        self.leaf = self.leaf_module = None
        index = self.finish(pending, tensors_in(out))
        if key is not None:
            self.memo.store(key, self.records[index], pending.unsupported, inputs, out)
        return out

    def run_group(self, name: str, run, schema_args: tuple) -> Any:
        """One record for a user-level op whose kernels differ per device (attention: see
        ``cnnscope.trace.attention``), costed from ``schema_args`` by the op registry's
        entry ``name``; the ops ``run()`` dispatches are its work, not rows of their own.
        Inside a torch.nn layer the ops are that layer's, as any other op."""
        if self.leaf is not None:
            return run()
        inputs = tensors_in(schema_args)
        parent = self.stack[-1] if self.stack else ""
        base = f"{parent}.{name}" if parent else name
        if self.memo is not None:
            self.bases[len(self.records)] = base
        # As on_op: a mask made from parameters alone (a relative position bias table) is
        # linked to them, and the op that consumes it owns them.
        params, trainable = self.claim_params(
            self.param_of[id(t)] for t in inputs if id(t) in self.param_of)
        pending = _Pending(name=self.unique_name(base), type=name, kind="function",
                           inputs=self.producers(inputs),
                           input_shapes=tuple(shape_of(t) for t in inputs
                                              if id(t) not in self.param_of),
                           params=params, trainable=trainable, read_bytes=tensor_bytes(inputs))
        self.leaf, self.leaf_custom = pending, True
        try:
            out = run()
        finally:
            self.leaf, self.leaf_custom = None, False
        outputs = tensors_in(out)
        spec = lookup(name)
        out_shapes = [shape_of(t) for t in outputs]
        sargs = shape_args(schema_args)
        cost = op_cost(spec, sargs, out_shapes, None)
        if cost is None:
            pending.unsupported.append(name)
            self.unsupported[name] += 1
        else:
            pending.macs, pending.flops = cost.macs, cost.flops
        if spec is not None and spec.geometry is not None:
            pending.geometry = spec.geometry(name, sargs, out_shapes)
        self.finish(pending, outputs)
        return out

    # ------------------------------------------------------------------ ops

    def on_op(self, func, args: tuple, kwargs: dict, out: Any, name: str,
              spec: OpEntry | None) -> None:
        """Charge one aten op (``name``, its op-table entry ``spec``) to its record."""
        outputs = tensors_in(out)
        if name.endswith("_with_indices"):
            outputs = outputs[:1]  # the indices are bookkeeping, not activations
        out_shapes = [shape_of(t) for t in outputs]
        sargs = shape_args(args)
        skw = {k: TensorShape(shape_of(v)) if isinstance(v, torch.Tensor) else v
               for k, v in kwargs.items()} if kwargs else None
        cost = op_cost(spec, sargs, out_shapes, skw)
        read_geometry = spec.geometry if spec is not None else None

        if self.leaf is not None:  # inside a torch.nn layer: add to its record
            if not is_view_op(func):  # a Flatten that only views its input moves nothing
                self.leaf.ops += 1
            if self.leaf_custom:
                return  # a user formula gives the whole module's cost
            if cost is None:
                self.leaf.unsupported.append(name)
                self.unsupported[name] += 1
            else:
                self.leaf.macs += cost.macs
                self.leaf.flops += cost.flops
            if not self.leaf.geometry and read_geometry is not None:
                self.leaf.geometry = read_geometry(name, sargs, out_shapes)
            return

        inputs = tensors_in((args, kwargs))
        producers = self.producers(inputs)
        param_inputs = [self.param_of[id(t)] for t in inputs if id(t) in self.param_of]
        if not producers and cost is not None and cost.macs == 0 and cost.flops == 0:
            # Free work on parameters or constants alone (W.unsqueeze(0), zeros(...)) is not
            # a layer of the dataflow. Views and copies of a parameter stay linked to it, so
            # that the op that finally consumes it is charged with its parameters.
            if param_inputs:
                for t in outputs:
                    self.param_of[id(t)] = param_inputs[0]
                    self.keep_alive.append(t)
            return
        kind = "shape" if spec is not None and spec.shape_only else "function"
        parent = self.stack[-1] if self.stack else ""
        params, trainable = self.claim_params(param_inputs)
        base = f"{parent}.{name}" if parent else name
        if self.memo is not None:
            self.bases[len(self.records)] = base
        pending = _Pending(
            name=self.unique_name(base),
            type=name,
            kind=kind,
            inputs=producers,
            input_shapes=tuple(shape_of(t) for t in inputs if id(t) not in self.param_of),
            params=params,
            trainable=trainable,
            geometry=read_geometry(name, sargs, out_shapes) if read_geometry is not None else {},
            # A view (reshape, slice, select...) re-indexes memory: it moves nothing.
            ops=0 if kind == "shape" or is_view_op(func) else 1,
            read_bytes=tensor_bytes(inputs),
        )
        if cost is None:
            pending.unsupported.append(name)
            self.unsupported[name] += 1
        else:
            pending.macs, pending.flops = cost.macs, cost.flops
        self.finish(pending, outputs)

    def current_layer(self) -> str:
        if self.leaf is not None:
            return self.leaf.name
        return self.stack[-1] if self.stack else "<model>"



def patch_forwards(modules: list[tuple[str, nn.Module]],
                    state: TraceState) -> list[tuple[nn.Module, Any]]:
    patched = []
    for name, module in modules:
        if isinstance(module, torch.jit.ScriptModule):
            continue  # its forward is compiled; its ops are still seen, under its parent
        own = module.__dict__.get("forward", MISSING)
        module.__dict__["forward"] = state.traced_forward(name, module, module.forward)
        patched.append((module, own))
    return patched


def restore_forwards(patched: list[tuple[nn.Module, Any]]) -> None:
    for module, own in patched:
        if own is MISSING:
            module.__dict__.pop("forward", None)
        else:
            module.__dict__["forward"] = own


class DispatchCounter(TorchDispatchMode):
    def __init__(self, state: TraceState):
        super().__init__()
        self.state = state

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = op_name(func)
        spec = lookup(name)  # the op's one table entry: meta kernel, cost, geometry
        try:
            out = meta_shortcut(spec, name, func, args, kwargs)
            if out is NotImplemented:
                out = func(*args, **kwargs)
        except Exception:
            if self.state.failed_at is None:
                self.state.failed_at = (self.state.current_layer(), name)
            raise
        if name in ("copy", "fill") and len(args) >= 2 and isinstance(args[1], torch.Tensor) \
                and not any(args[1].stride()) and id(args[1]) not in self.state.producer:
            # ``x[i] = 3``: PyTorch fills with the number on the CPU but copies it, made a
            # tensor and expanded, on other devices (meta, CUDA). One op, one row everywhere.
            name, spec, args = "fill", lookup("fill"), (args[0], 0)
        self.state.on_op(func, args, kwargs, out, name, spec)
        return out


patches.fill_dynamo_cache(DispatchCounter)  # spare the first traced op torch._dynamo
