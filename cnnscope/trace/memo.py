"""The leaf memo: a torch.nn layer already measured is replayed from its record (``LeafMemo``).

On the meta device a leaf layer's output shapes, cost and geometry depend only on its
configuration and its inputs' layouts; ``_KNOWN`` keeps what each first call recorded,
shared by every meta trace of the process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnscope.trace.blocks import BLOCKS, MISSING, PLAIN, TREE_IDS, block_config
from cnnscope.ops.registry import formulas_revision
from cnnscope.trace.records import LayerRecord


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
        if t not in PLAIN and not (t is tuple and PLAIN.issuperset(map(type, v))):
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
    BLOCKS.clear()
    TREE_IDS.clear()


def _shared_known() -> dict[tuple, _Known]:
    global _known_for
    tables = formulas_revision()
    if tables != _known_for or len(_KNOWN) > _KNOWN_LIMIT or len(BLOCKS) > _KNOWN_LIMIT:
        _KNOWN.clear()
        BLOCKS.clear()
        TREE_IDS.clear()
        _known_for = tables
    return _KNOWN


class LeafMemo:
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
        self.blocks = BLOCKS
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
        tid = self.tree_ids.get(id(module), MISSING)
        if tid is not MISSING:
            return tid
        own = block_config(module)
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
                tid = TREE_IDS.get(signature)
                if tid is None:
                    tid = TREE_IDS[signature] = len(TREE_IDS)
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
        config = self.configs.get(id(module), MISSING)
        if config is MISSING:
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
