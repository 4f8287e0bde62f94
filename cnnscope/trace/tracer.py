"""The one forward pass that measures everything.

``trace_module`` runs a model once under a ``TorchDispatchMode`` that sees every aten op,
with each module's ``forward`` wrapped for the length of the trace to know where each op
happens. By default the model lives on the meta device: shapes propagate, no weights are
allocated and nothing is computed, so any input size or batch costs the same. On meta, a
leaf layer already measured with the same configuration and input layout is replayed
from its record (``_LeafMemo``) instead of run again.

It emits one ``LayerRecord`` per call of a leaf ``torch.nn`` layer (Conv2d, BatchNorm2d,
ReLU...: its cost is the sum of the ops it ran) and one per op called outside such a
layer (the residual ``add``, a ``cat``, a ``matmul`` in a custom module). Each record
names the records that produced its inputs, so the records form the dataflow graph the
receptive-field analysis walks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from math import prod
from typing import Any, Iterable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from cnnscope.errors import (
    DataDependentError,
    DeviceUnavailableError,
    InputTooSmallError,
    TraceError,
)
from cnnscope.trace.formulas import (
    FORMULAS,
    FREE_OPS,
    SHAPE_OPS,
    TensorShape,
    formulas_revision,
    has_module_formula,
    module_cost,
    op_cost,
)
from cnnscope.trace.meta import fast_meta_op, one_op_attention, paused_gc
from cnnscope.trace.records import LayerRecord, ModelReport, Totals
from cnnscope.trace.sizes import as_input_sizes, check_elements, size_text

MODEL_INPUT = -1

# Ops whose arguments describe a layer's spatial geometry (kernel, stride, padding...).
_CONV_OPS = {"convolution", "_convolution"}
_POOL_OPS = {"max_pool2d_with_indices", "max_pool2d", "max_pool1d", "max_pool3d",
             "max_pool3d_with_indices", "avg_pool2d", "avg_pool1d", "avg_pool3d"}
_ADAPTIVE_OPS = {"_adaptive_avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
                 "_adaptive_avg_pool3d", "adaptive_max_pool3d"}
_UPSAMPLE_RE = re.compile(r"^_?upsample_")
_PAD_RE = re.compile(r"^(reflection|replication)_pad[123]d$")
# Leaf torch.nn layers whose inner ops must not lend them geometry (LRN pools over channels).
_NO_GEOMETRY_MODULES = {"LocalResponseNorm", "CrossMapLRN2d"}


def op_name(func) -> str:
    """``aten.relu_.default`` -> ``relu``: the packet name without the in-place suffix."""
    name = func.overloadpacket.__name__
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return name


def _is_leaf_nn_layer(module: nn.Module) -> bool:
    # Only torch's own layers are atomic: their meaning is known. A custom module is
    # traced through, so its ops (a crop, a gate) stay visible, unless the user gave
    # its class a formula (register_formula).
    return (not module._modules and type(module).__module__.startswith("torch.nn")) \
        or has_module_formula(module)


def _tuple(v: Any, n: int | None = None) -> tuple[int, ...] | None:
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        return tuple(int(x) for x in v)
    return (int(v),) * (n or 1)


def geometry(name: str, args: tuple, out_shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """Kernel/stride/padding/dilation/groups and extras of a geometry-bearing op."""
    if name in _CONV_OPS:
        w = args[1]
        nd = len(w) - 2
        transposed = bool(args[6]) if len(args) > 6 else False
        g: dict[str, Any] = {
            "kernel_size": tuple(w[2:]),
            "stride": _tuple(args[3], nd),
            "padding": _tuple(args[4], nd),
            "dilation": _tuple(args[5], nd),
            "groups": int(args[8]) if len(args) > 8 else 1,
        }
        if transposed:
            g["extra"] = {"transposed": True, "output_padding": _tuple(args[7], nd)}
        return g
    if name in _POOL_OPS:
        x = args[0]
        nd = 3 if "3d" in name else (1 if "1d" in name else 2)
        kernel = _tuple(args[1], nd)
        stride = _tuple(args[2], nd) if len(args) > 2 and args[2] not in (None, [], ()) else kernel
        padding = _tuple(args[3], nd) if len(args) > 3 else (0,) * nd
        if name.startswith("max"):
            dilation = _tuple(args[4], nd) if len(args) > 4 else (1,) * nd
            ceil_mode = bool(args[5]) if len(args) > 5 else False
        else:
            dilation = (1,) * nd
            ceil_mode = bool(args[4]) if len(args) > 4 else False
        extra = {"ceil_mode": ceil_mode, "pool": "max" if name.startswith("max") else "avg"}
        del x
        return {"kernel_size": kernel, "stride": stride, "padding": padding,
                "dilation": dilation, "extra": extra}
    if name in _ADAPTIVE_OPS:
        return {"extra": {"output_size": tuple(out_shapes[0][2:]), "adaptive": True}}
    if _UPSAMPLE_RE.match(name):
        # _upsample_nearest_exact2d -> "nearest-exact", as F.interpolate names the mode
        mode = name.split("upsample_")[1].rstrip("123d").replace("_exact", "-exact") or "nearest"
        extra = {"mode": mode, "output_size": tuple(out_shapes[0][2:])}
        # (bi/tri)linear and bicubic: upsample_*(input, output_size, align_corners, ...)
        if len(args) > 2 and isinstance(args[2], bool):
            extra["align_corners"] = args[2]
        return {"extra": extra}
    if name in ("cat", "stack"):
        dim = args[1] if len(args) > 1 else 0
        return {"extra": {"dim": int(dim)}}
    if name == "slice":
        dim = args[1] if len(args) > 1 else 0
        start = args[2] if len(args) > 2 else None
        end = args[3] if len(args) > 3 else None
        step = args[4] if len(args) > 4 else 1
        return {"extra": {"dim": int(dim), "start": start, "end": end, "step": int(step)}}
    if name == "constant_pad_nd" or (_PAD_RE.match(name) and len(args) > 1):
        return {"extra": {"pad": tuple(int(p) for p in args[1])}}
    # Where dims go and which dim a softmax normalises: receptive fields need both.
    if name == "permute" and len(args) > 1:
        return {"extra": {"dims": tuple(int(d) for d in args[1])}}
    if name == "transpose" and len(args) > 2:
        return {"extra": {"dims": (int(args[1]), int(args[2]))}}
    if name in ("_softmax", "_log_softmax", "softmax", "log_softmax") and len(args) > 1:
        return {"extra": {"dim": int(args[1])}}
    if name in ("mean", "sum", "amax", "amin") and len(args) > 1:
        dims = args[1]
        return {"extra": {"dim": tuple(dims) if isinstance(dims, (list, tuple)) else dims}}
    return {}


def _shape_of(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)  # torch.Size is a tuple of ints


_VIEW_OPS: dict[Any, bool] = {}


def _is_view_op(func) -> bool:
    """True for an aten op whose output is a view of an input (its schema says the result
    aliases an argument without writing it: slice, select, view, expand...). In-place ops
    (``relu_``, ``add_``) write their alias and do move data."""
    known = _VIEW_OPS.get(func)
    if known is None:
        try:
            returns = func._schema.returns
            known = bool(returns) and all(
                r.alias_info is not None and not r.alias_info.is_write for r in returns)
        except AttributeError:
            known = False
        _VIEW_OPS[func] = known
    return known


def _nbytes(tensors: Iterable[torch.Tensor | None]) -> int:
    """Bytes of the distinct tensors given, at their own dtype (a tensor passed twice, as
    in ``x * x``, is read once: the minimal-traffic convention of ``bytes_moved``)."""
    seen: set[int] = set()
    total = 0
    for t in tensors:
        if t is not None and id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def _tensors(obj: Any) -> list[torch.Tensor]:
    """Tensors in a nest of tuples/lists/dicts (a lean tree_flatten: this runs per op)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    out: list[torch.Tensor] = []
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            out.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
    return out


def _shape_args(args: tuple) -> tuple:
    """Positional args with tensors replaced by TensorShape (lists of tensors kept as lists)."""
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(TensorShape(_shape_of(a)))
        elif isinstance(a, (list, tuple)) and a and all(isinstance(x, torch.Tensor) for x in a):
            out.append([TensorShape(_shape_of(x)) for x in a])
        else:
            out.append(a)
    return tuple(out)


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
    read_bytes: int = 0  # input activations + parameters, each tensor once (see _nbytes)
    ops: int = 0  # aten ops the layer ran; none (Identity) means it moved nothing


class _TraceState:
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
        # Leaf-layer results by (layer configuration, input shapes): see _LeafMemo.
        self.memo: _LeafMemo | None = _LeafMemo() if memoize else None
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
        out_shapes = [_shape_of(t) for t in outputs]
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
            bytes_moved=(p.read_bytes + _nbytes(outputs)) if p.ops else 0,
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
        leaf = _is_leaf_nn_layer(module)

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
        """A custom module's call: replayed when an identical block already ran (see _Block).

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
                elif type(v) in _PLAIN:
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
            if out is not _MISSING:
                return out
        # Run it for real; keep what it recorded when the call can be replayed exactly.
        fresh = all(self.calls.get(id(m), 0) == 0 for _, m in subtree)
        params = _subtree_params(subtree)
        fresh = fresh and not any(pid in self.consumed for pid in params)
        start = len(self.records)
        before = Counter(self.unsupported)
        in_producers = tuple(self.producer.get(id(t)) for t in inputs)
        out = forward(*args, **kwargs)
        if fresh and known is None:
            block = _Block.capture(self, name, subtree, inputs, in_producers, start, out,
                                   self.unsupported - before, params)
            if block is not None:
                memo.blocks[key] = block
        return out

    def run_leaf(self, name: str, module: nn.Module, forward, args: tuple, kwargs: dict) -> Any:
        call = self.calls.get(id(module), 0)
        self.calls[id(module)] = call + 1
        inputs = [args[0]] if len(args) == 1 and isinstance(args[0], torch.Tensor) else _tensors(args)
        custom = has_module_formula(module)
        own = module._parameters
        if custom:  # a user formula's module owns its submodules' parameters too
            params, trainable = self.claim_params(id(p) for p in module.parameters())
        else:
            params, trainable = self.claim_params(
                id(p) for p in own.values() if p is not None) if own else (0, 0)
        record_name = name if call == 0 else f"{name}#{call + 1}"
        producers = self.producers(inputs)
        input_shapes = tuple(_shape_of(t) for t in inputs)
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
                           read_bytes=_nbytes(inputs) + (_nbytes(own.values()) if own else 0))
        if pending.type in _NO_GEOMETRY_MODULES:
            pending.geometry = {"extra": {"size": getattr(module, "size", None)}}
        self.leaf, self.leaf_module = pending, module
        if custom:
            self.leaf_custom = True
            try:
                out = forward(*args, **kwargs)
            finally:
                self.leaf_custom = False
            cost = module_cost(module, input_shapes, [_shape_of(t) for t in _tensors(out)])
            pending.macs, pending.flops = cost.macs, cost.flops
        else:
            out = forward(*args, **kwargs)
        self.leaf = self.leaf_module = None
        index = self.finish(pending, _tensors(out))
        if key is not None:
            self.memo.store(key, self.records[index], pending.unsupported, inputs, out)
        return out

    # ------------------------------------------------------------------ ops

    def on_op(self, func, args: tuple, kwargs: dict, out: Any) -> None:
        name = op_name(func)
        outputs = _tensors(out)
        if name.endswith("_with_indices"):
            outputs = outputs[:1]  # the indices are bookkeeping, not activations
        out_shapes = [_shape_of(t) for t in outputs]
        sargs = _shape_args(args)
        skw = {k: TensorShape(_shape_of(v)) if isinstance(v, torch.Tensor) else v
               for k, v in kwargs.items()} if kwargs else None
        cost = op_cost(name, sargs, out_shapes, skw)

        if self.leaf is not None:  # inside a torch.nn layer: add to its record
            if not _is_view_op(func):  # a Flatten that only views its input moves nothing
                self.leaf.ops += 1
            if self.leaf_custom:
                return  # a user formula gives the whole module's cost
            if cost is None:
                self.leaf.unsupported.append(name)
                self.unsupported[name] += 1
            else:
                self.leaf.macs += cost.macs
                self.leaf.flops += cost.flops
            if not self.leaf.geometry:
                self.leaf.geometry = geometry(name, sargs, out_shapes)
            return

        inputs = _tensors((args, kwargs))
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
        kind = "shape" if name in SHAPE_OPS else "function"
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
            input_shapes=tuple(_shape_of(t) for t in inputs if id(t) not in self.param_of),
            params=params,
            trainable=trainable,
            geometry=geometry(name, sargs, out_shapes),
            # A view (reshape, slice, select...) re-indexes memory: it moves nothing.
            ops=0 if kind == "shape" or _is_view_op(func) else 1,
            read_bytes=_nbytes(inputs),
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


_MISSING = object()
_PLAIN = {int, float, bool, str, type(None)}


def _config_of(module: nn.Module) -> tuple | None:
    """Everything that decides what a torch.nn layer does with an input of a given shape.

    Its public attributes (in_channels, stride, training, align_corners...) and the shapes
    of its parameters and buffers. ``None`` when an attribute is not a plain value: such a
    layer is never replayed.
    """
    items = tuple((k, v) for k, v in module.__dict__.items()
                  if k[0] != "_" and k != "forward")  # forward: the tracer's own wrapper
    for _, v in items:
        t = type(v)
        if t not in _PLAIN and not (t is tuple and _PLAIN.issuperset(map(type, v))):
            return None
    d = module.__dict__
    tensors = tuple((k, None if t is None else (t.shape, t.dtype))
                    for k, t in (*d["_parameters"].items(), *d["_buffers"].items()))
    return type(module), items, tensors


@dataclass(frozen=True)
class _Known:
    """What one leaf call recorded: replayed for an identical layer on an identical input."""

    template: LayerRecord  # the first call's record; a replay changes only who and where
    unsupported: tuple[str, ...]  # ops without a formula, as often as they ran
    single: bool  # the layer returned a bare tensor (else a tuple)
    # Per output: the index of the input it is (in-place layers, Identity), or its layout.
    layout: tuple[tuple[int | None, tuple[int, ...], tuple[int, ...], torch.dtype], ...]

    def replay(self, index: int, name: str, inputs: tuple[int, ...],
               input_shapes: tuple[tuple[int, ...], ...], params: int, trainable: int,
               call: int) -> LayerRecord:
        t = self.template
        return dataclasses.replace(t, index=index, name=name, inputs=inputs,
                                   input_shapes=input_shapes, params=params,
                                   trainable_params=trainable, call_index=call)

    def outputs(self, inputs: list[torch.Tensor]) -> Any:
        with torch._C._DisableTorchDispatch():  # new tensors are not ops of the model
            outs = tuple(inputs[i] if i is not None else
                         torch.empty_strided(shape, stride, dtype=dtype, device="meta")
                         for i, shape, stride, dtype in self.layout)
        return outs[0] if self.single else outs


# Measured leaf calls, shared by every meta trace of this process (a zoo pass, compare,
# a size search): by (layer configuration, input layouts). Emptied when the cost-formula
# tables change size (a formula was registered) and when it grows past _KNOWN_LIMIT.
_KNOWN: dict[tuple, _Known] = {}
_KNOWN_LIMIT = 50_000
_known_for: tuple[int, ...] | None = None


def clear_memo() -> None:
    """Forget every measured layer and block (benchmarks use it to time a first trace)."""
    _KNOWN.clear()
    _BLOCKS.clear()
    _TREE_IDS.clear()


def _shared_known() -> dict[tuple, _Known]:
    global _known_for
    tables = (len(FORMULAS), len(FREE_OPS), len(SHAPE_OPS), formulas_revision())
    if tables != _known_for or len(_KNOWN) > _KNOWN_LIMIT or len(_BLOCKS) > _KNOWN_LIMIT:
        _KNOWN.clear()
        _BLOCKS.clear()
        _TREE_IDS.clear()
        _known_for = tables
    return _KNOWN


_NN_INTERNALS = frozenset({
    "training", "_parameters", "_buffers", "_non_persistent_buffers_set", "_backward_pre_hooks",
    "_backward_hooks", "_is_full_backward_hook", "_forward_hooks", "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
    "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks", "_modules", "forward",
})
_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _block_config(module: nn.Module) -> tuple | None:
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
        if t not in _PLAIN:
            if t not in (tuple, list) or not _PLAIN.issuperset(map(type, v)):
                return None
            v = (t, tuple(v))
        items.append((k, v))
    tensors = tuple((k, None if t is None else (t.shape, t.dtype, t.requires_grad))
                    for k, t in (*d["_parameters"].items(), *d["_buffers"].items()))
    return type(module), d.get("training"), tuple(items), tensors


def _subtree_params(subtree: list[tuple[str, nn.Module]]) -> dict[int, None]:
    """Ids of the parameters of a subtree's modules, each once, in order."""
    out: dict[int, None] = {}
    for _, m in subtree:
        for p in m._parameters.values():
            if p is not None:
                out[id(p)] = None
    return out


# Subtree configurations -> small ids, and recorded blocks by (subtree id, input layouts):
# shared by every meta trace of the process and emptied with the layer memo.
_TREE_IDS: dict[tuple, int] = {}
_BLOCKS: dict[tuple, "_Block"] = {}


class _Block:
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
    def capture(state: "_TraceState", name: str, subtree: list, inputs: list, in_producers: tuple,
                start: int, out: Any, unsupported: Counter, params: dict) -> "_Block | None":
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
        return _Block(raw, calls, tuple(unsupported.items()), claimed, single, tuple(layout))

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

    def replay(self, state: "_TraceState", name: str, subtree: list, inputs: list) -> Any:
        if len(subtree) != len(self.calls) or any(state.calls.get(id(m), 0) for _, m in subtree):
            return _MISSING
        if not self.prepare():
            return _MISSING
        params = _subtree_params(subtree)
        if any(p in state.consumed for p in params) or \
                sum(state.params[p][0] for p in params if p in state.params) != self.params:
            return _MISSING
        state.consumed.update(params)
        for (_, m), (_, n) in zip(subtree, self.calls):
            if n:
                state.calls[id(m)] = n
        prefix = f"{name}." if name else ""
        arg_producers = [state.producer.get(id(t)) for t in inputs]
        base_index = len(state.records)
        shapes = [tuple(t.shape) for t in inputs]
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
        del shapes
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


class _LeafMemo:
    """Leaf layers already measured, by (configuration, input layouts).

    On the meta device a torch.nn layer's output shapes, cost and geometry depend only on
    its configuration and its inputs' shapes, so the 36 identical bottlenecks of ResNet-152's
    conv4_x are measured once and replayed 35 times without running their forward, and a
    layer met in an earlier trace of this process is replayed too. The first call always
    runs for real, so a replay is exactly what that call recorded.
    """

    def __init__(self) -> None:
        self.configs: dict[int, tuple | None] = {}  # per trace: module ids are reused
        self.known = _shared_known()
        self.blocks = _BLOCKS
        self.tree_ids: dict[int, int | None] = {}  # per trace: id(module) -> subtree config id
        self.subtrees: dict[int, list[tuple[str, nn.Module]]] = {}
        self.module_list: list[tuple[str, nn.Module]] | None = None
        self.module_ends: list[int] = []
        self.module_pos: dict[int, int] = {}

    def index_subtrees(self, modules: list[tuple[str, nn.Module]]) -> None:
        """Each module's subtree, relative names, from the trace's one preorder walk.

        ``named_modules`` lists a subtree contiguously; a module shared with an earlier
        parent is listed there only, so such a subtree looks incomplete and is never
        replayed (its length differs from the recorded one).
        """
        stack: list[tuple[str, int]] = []
        ends: list[int] = [0] * len(modules)
        for i, (n, _) in enumerate(modules):
            while stack and not (stack[-1][0] == "" or n.startswith(stack[-1][0] + ".")):
                ends[stack.pop()[1]] = i
            stack.append((n, i))
        for _, i in stack:
            ends[i] = len(modules)
        self.module_list, self.module_ends = modules, ends
        self.module_pos = {id(m): i for i, (_, m) in enumerate(modules)}

    def subtree(self, module: nn.Module) -> list[tuple[str, nn.Module]]:
        got = self.subtrees.get(id(module))
        if got is None:
            i = self.module_pos.get(id(module)) if self.module_list is not None else None
            if i is None:
                got = list(module.named_modules())
            else:
                top = self.module_list[i][0]
                cut = len(top) + 1 if top else 0
                got = [("" if j == i else n[cut:], m)
                       for j, (n, m) in enumerate(self.module_list[i:self.module_ends[i]], i)]
            self.subtrees[id(module)] = got
        return got

    def tree_id(self, module: nn.Module) -> int | None:
        """A small int naming ``module``'s whole subtree configuration (None: not replayable).

        Interned in a table shared by every trace, so equal subtrees of different models
        or traces get the same id.
        """
        tid = self.tree_ids.get(id(module), _MISSING)
        if tid is not _MISSING:
            return tid
        own = _block_config(module)
        tid = None
        if own is not None:
            children = []
            for child_name, child in module._modules.items():
                cid = self.tree_id(child) if child is not None else -1
                if cid is None:
                    break
                children.append((child_name, cid))
            else:
                signature = (own, tuple(children))
                tid = _TREE_IDS.get(signature)
                if tid is None:
                    tid = _TREE_IDS[signature] = len(_TREE_IDS)
        self.tree_ids[id(module)] = tid
        return tid

    def block_key(self, module: nn.Module, inputs: list[torch.Tensor]) -> tuple | None:
        tid = self.tree_id(module)
        if tid is None:
            return None
        return tid, tuple((t.shape, t.dtype, t.stride()) for t in inputs)

    def key(self, module: nn.Module, args: tuple, kwargs: dict,
            inputs: list[torch.Tensor]) -> tuple | None:
        if kwargs or len(inputs) != len(args):
            return None  # non-tensor arguments may change what the layer does
        config = self.configs.get(id(module), _MISSING)
        if config is _MISSING:
            config = self.configs[id(module)] = _config_of(module)
        if config is None:
            return None
        return config, tuple((t.shape, t.dtype, t.stride()) for t in inputs)

    def get(self, key: tuple) -> _Known | None:
        return self.known.get(key)

    def store(self, key: tuple, record: LayerRecord, unsupported: list[str],
              inputs: list[torch.Tensor], out: Any) -> None:
        single = isinstance(out, torch.Tensor)
        outs = (out,) if single else out
        if not isinstance(outs, tuple) or not all(isinstance(t, torch.Tensor) for t in outs):
            return  # an unusual output structure: always run this layer
        layout = []
        for t in outs:
            alias = next((i for i, x in enumerate(inputs) if x is t), None)
            layout.append((alias, tuple(t.shape), tuple(t.stride()), t.dtype))
        self.known[key] = _Known(record, tuple(unsupported), single, tuple(layout))


def _patch_forwards(modules: list[tuple[str, nn.Module]],
                    state: _TraceState) -> list[tuple[nn.Module, Any]]:
    patched = []
    for name, module in modules:
        if isinstance(module, torch.jit.ScriptModule):
            continue  # its forward is compiled; its ops are still seen, under its parent
        own = module.__dict__.get("forward", _MISSING)
        module.__dict__["forward"] = state.traced_forward(name, module, module.forward)
        patched.append((module, own))
    return patched


def _restore_forwards(patched: list[tuple[nn.Module, Any]]) -> None:
    for module, own in patched:
        if own is _MISSING:
            module.__dict__.pop("forward", None)
        else:
            module.__dict__["forward"] = own


class _DispatchCounter(TorchDispatchMode):
    def __init__(self, state: _TraceState):
        super().__init__()
        self.state = state

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            out = fast_meta_op(op_name(func), func, args, kwargs)
            if out is NotImplemented:
                out = func(*args, **kwargs)
        except Exception:
            if self.state.failed_at is None:
                self.state.failed_at = (self.state.current_layer(), op_name(func))
            raise
        self.state.on_op(func, args, kwargs, out)
        return out


def _skip_dynamo_import(mode: type = None) -> None:
    """Spare the first traced op a 1.5 s ``import torch._dynamo``.

    TorchDispatchMode wraps every subclass's ``__torch_dispatch__`` in
    ``torch._disable_dynamo``, whose first call imports torch._dynamo only to mark the
    function as not to be compiled. The tracer never runs under torch.compile, so we
    fill the wrapper's cache with the plain function. If torch._dynamo is already
    loaded (someone is compiling), the wrapper is left to do its normal job.
    """
    import sys

    if "torch._dynamo" in sys.modules:
        return
    raw = getattr((mode or _DispatchCounter).__dict__.get("__torch_dispatch__"), "__wrapped__", None)
    if raw is not None and getattr(raw, "__dynamo_disable", None) is None:
        setattr(raw, "__dynamo_disable", raw)


_skip_dynamo_import()


# ---------------------------------------------------------------------- public API


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/"meta" -> meta; "cpu"; "cuda"/"cuda:N" when present. Anything else
    (mps, xla, a typo, cuda without CUDA) is a one-line error before anything runs."""
    if device is None:
        return torch.device("meta")
    try:
        dev = torch.device(device.strip() if isinstance(device, str) else device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceUnavailableError(
            f"unknown device {device!r}", "use meta, cpu or cuda (cuda:N for a given GPU)"
        ) from None
    if dev.type not in ("meta", "cpu", "cuda"):
        raise DeviceUnavailableError(f"device {str(device)!r} is not supported",
                                     "cnnscope runs on meta (counting), cpu or cuda")
    if dev.type in ("meta", "cpu") and dev.index not in (None, 0):
        raise DeviceUnavailableError(f"no device {str(device)!r}", f"use --device {dev.type}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "CUDA is not available on this machine",
            "use --device cpu (or meta, the default, for counting)",
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"no CUDA device {dev.index} (this machine has {torch.cuda.device_count()})",
            "pick an existing cuda:N",
        )
    return dev


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
    with _TRACE_LOCK:
        return _trace(model, input_size, batch, model_name, dev, train, memoize, backward,
                      example_inputs)


_TRACE_LOCK = threading.RLock()  # re-entrant: a model's forward may itself call analyze


def _model_inputs(input_size: Any, batch: int, dev: torch.device,
                  example_inputs: Any) -> tuple[tuple, tuple[tuple[int, ...], ...]]:
    """The forward's positional arguments and the per-sample shapes of its input tensors."""
    if example_inputs is not None:
        with torch.device(dev):
            made = example_inputs(batch)
        moved = _to_device(made, dev)
        args = moved if isinstance(moved, tuple) else \
            tuple(moved) if isinstance(moved, list) else (moved,)
        return args, tuple(_shape_of(t)[1:] for t in _tensors(args))
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
    state = _TraceState(params, memoize=memoize and dev.type == "meta" and not backward)
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
    patched = _patch_forwards(modules, state)
    state.mark_output(_tensors(xs), MODEL_INPUT)
    try:
        # Attention as one op on meta is for speed; autograd needs its real ops.
        attention = one_op_attention() if dev.type == "meta" and not backward \
            else contextlib.nullcontext()
        with (torch.enable_grad() if backward else torch.no_grad()), paused_gc(), attention, \
                _DispatchCounter(state), (labeller or contextlib.nullcontext()):
            output = model(*xs)
    except Exception as exc:  # turn what the input caused into a user error
        raise _explain_failure(exc, state, label, sizes) from None
    finally:
        _restore_forwards(patched)
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
        output_shapes=tuple(_shape_of(t) for t in _tensors(output)),
        unsupported=tuple(sorted(state.unsupported.items())),
        unused_params=unused,
        notes=tuple(notes),
        module_types=tuple((n, type(m).__name__) for n, m in modules),
    )


def _count_backward(records: tuple[LayerRecord, ...], output: Any, leaves: list[torch.Tensor],
                    labeller, notes: list[str]):
    """Records with their counted backward work, and the count (None if it failed)."""
    from dataclasses import replace

    from cnnscope.trace.backward import UNATTRIBUTED, count_backward

    try:
        bw = count_backward(_tensors(output), leaves, labeller.nodes)
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


# Ops whose output shape depends on the values of their input: no meta kernel can give it.
DATA_DEPENDENT_OPS = frozenset({
    "nonzero", "masked_select", "nms", "unique", "_unique", "_unique2", "unique_dim",
    "unique_consecutive", "_local_scalar_dense", "item", "argwhere", "repeat_interleave",
    "bincount", "histc", "masked_scatter", "batched_nms",
})
_DATA_DEPENDENT = re.compile(
    r"data-dependent|Cannot copy out of meta tensor|cannot be called on meta tensors|"
    r"meta_nonzero_assume_all_nonzero|_local_scalar_dense", re.IGNORECASE)

_TOO_SMALL = re.compile(
    r"too small|smaller than|can't be greater than|cannot be greater|non-positive|"
    r"Output size is|output size .* is too small|negative dimension|Padding size should be",
    re.IGNORECASE,
)


def _explain_failure(exc: Exception, state: _TraceState, model: str,
                     input_size: Any) -> Exception:
    size = size_text(input_size) if input_size else "its example inputs"
    layer, op = state.failed_at or (state.current_layer(), "?")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if _DATA_DEPENDENT.search(f"{op} {exc}") or op in DATA_DEPENDENT_OPS:
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
