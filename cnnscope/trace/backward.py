"""Counted backward work: the ops autograd really runs, per layer, on the meta device.

The usual estimate is backward = 2 x forward. It is wrong at both ends: the first layer
computes no input gradient (the data needs none), a frozen layer (``requires_grad=False``)
computes no weight gradient, and batch norm, activations and pooling do their own
elementwise work. So cnnscope runs the backward pass itself, on meta tensors (nothing is
computed or allocated), under a ``TorchDispatchMode`` that costs every aten op autograd
dispatches, and charges each op to the forward record whose op created the autograd node
that runs it:

* during the forward pass a ``TorchFunctionMode`` labels every new autograd node
  (``grad_fn``, through its ``metadata`` dict) with the record being measured: the leaf
  ``torch.nn`` layer running, or the function record (a residual ``add``, a ``cat``) the
  call produced. It labels as soon as each call returns, so an in-place op (``relu_``,
  ``out += identity``) cannot lend its node to the layer before it;
* a pre-hook on each labelled node names the record for the ops the node runs;
* gradient accumulation where one tensor fed two consumers (an ``add`` in backward) is
  charged to the node that ran last, the one that completes the sum.

The backward starts from a gradient of ones for every output (the loss is not counted:
it is not a layer) and the input needs no gradient, as in training. MACs and FLOPs use
the forward's conventions; each backward op is an entry of the op registry
(``cnnscope.ops``), next to its forward op in the same family module. On meta, an op's
result comes from its entry's shape kernel where it has one, as in the forward trace.
They are:

* ``convolution_backward``: input gradient = the forward's MACs (a transposed
  convolution of the output gradient), weight gradient = the forward's MACs again, each
  only when autograd asks for it (``output_mask``); bias gradient: one add per
  output-gradient element. FLOPs = 2 x MACs + bias adds.
* matrix products (``mm``, ``addmm``, ``bmm``) and elementwise ops (``add`` of two
  gradients, ``div`` of a mean's backward): their forward formulas.
* batch norm backward: 2 per input element to recompute the normalised input x̂ (when any
  gradient needs it), 3 for the weight and bias gradients (sum g, sum g·x̂), and for the
  input gradient 4 in training (scale · (g - mean g - x̂ · mean g·x̂)), 1 in eval
  (g · scale); layer/group norm as batch norm in training.
* ReLU/ReLU6/leaky ReLU/hardtanh/threshold backward: 1 per element (a select);
  sigmoid/tanh backward: 3 (y(1 - y)g, (1 - y²)g); other smooth activations (GELU,
  SiLU, ELU, softplus, mish, hardswish, hardsigmoid): 4.
* max pooling backward: 1 per output-gradient element (scattered into the input);
  average pooling backward: one per window element per output-gradient element;
  adaptive pooling backward: one per input element; interpolation backward: as its
  forward (nearest: one add per output-gradient element).
* softmax / log-softmax backward: 4 per element.
* slice/select backward (a zero-filled copy) and views: 0.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

import cnnscope.patches as patches
from cnnscope.ops.names import op_name
from cnnscope.ops.registry import lookup, meta_shortcut, op_cost
from cnnscope.trace.tensors import shape_args, shape_of, tensors_in

_TAG = "cnnscope_record"  # key of the record name in an autograd node's metadata
UNATTRIBUTED = "<unattributed>"


# ---------------------------------------------------------------------- labelling


def _label_nodes(tensors: Sequence[torch.Tensor], label: str, hooked: list) -> None:
    """Label every unlabelled autograd node reachable from ``tensors`` with ``label``."""
    stack = [t.grad_fn for t in tensors if isinstance(t, torch.Tensor) and t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        meta = node.metadata
        if _TAG in meta:
            continue
        meta[_TAG] = label
        hooked.append(node)
        stack.extend(n for n, _ in node.next_functions)


class NodeLabeller(TorchFunctionMode):
    """During the forward: label each new autograd node with the record being measured.

    ``current()`` names that record: the leaf layer running, else the last record the
    call produced, else None (the node is labelled later, by the call that consumes it:
    a view of a weight belongs to the layer that uses it).
    """

    def __init__(self, state) -> None:
        super().__init__()
        self.state = state
        self.nodes: list = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        before = len(self.state.records)
        out = func(*args, **(kwargs or {}))
        leaf = self.state.leaf
        if leaf is not None:
            label = leaf.name
        elif len(self.state.records) > before:
            label = self.state.records[-1].name
        else:
            return out
        _label_nodes(tensors_in(out), label, self.nodes)
        return out


@dataclass
class BackwardCount:
    """What the backward pass cost, per forward record name (exact integers)."""

    macs: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    flops: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unsupported: Counter = field(default_factory=Counter)

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())

    @property
    def total_flops(self) -> int:
        return sum(self.flops.values())


class _BackwardCounter(TorchDispatchMode):
    def __init__(self, count: BackwardCount) -> None:
        super().__init__()
        self.count = count
        self.current = UNATTRIBUTED

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = op_name(func)
        spec = lookup(name)
        # On meta, the op's shape kernel where the registry has one, as the forward trace
        # does: PyTorch's meta kernels for the backward of activations and batch norm, and
        # for the adds and muls between them, are Python decompositions whose first call
        # imports torch._dynamo (0.8 s), and slow for a shape.
        out = meta_shortcut(spec, name, func, args, kwargs)
        if out is NotImplemented:
            out = func(*args, **kwargs)
        outs = [shape_of(t) for t in tensors_in(out)]
        cost = op_cost(spec, shape_args(args), outs)
        if cost is None:
            self.count.unsupported[name] += 1
        elif cost.macs or cost.flops:
            self.count.macs[self.current] += cost.macs
            self.count.flops[self.current] += cost.flops
        return out


def count_backward(outputs: Sequence[torch.Tensor], leaves: Sequence[torch.Tensor],
                   nodes: list) -> BackwardCount:
    """Run the backward of ``outputs`` (gradient of ones) and cost it per record label.

    ``leaves`` are the tensors whose gradients training needs (the trainable parameters);
    their gradients are returned by ``torch.autograd.grad``, never stored in ``.grad``, so
    a real model traced on its own device is left as it was. ``nodes`` are the labelled
    autograd nodes (``NodeLabeller.nodes``); a node reachable from the outputs that no
    call labelled is charged to ``UNATTRIBUTED``.
    """
    count = BackwardCount()
    roots = [t for t in outputs if isinstance(t, torch.Tensor) and t.grad_fn is not None]
    leaves = [t for t in leaves if t.requires_grad]
    if not roots or not leaves:
        return count
    _label_nodes(roots, UNATTRIBUTED, nodes)
    counter = _BackwardCounter(count)

    def enter(label: str):
        def pre_hook(grad_outputs):
            counter.current = label

        return pre_hook

    handles = [node.register_prehook(enter(node.metadata[_TAG])) for node in nodes]
    try:
        with torch.no_grad():
            grads = [_ones_like(t) for t in roots]
        with counter:
            torch.autograd.grad(roots, leaves, grads, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    return count


patches.fill_dynamo_cache(_BackwardCounter)


def _ones_like(t: torch.Tensor) -> torch.Tensor:
    """The gradient of ones for ``t``. For a contiguous meta tensor (values are never
    there), an empty one, as ``torch.ones_like`` lays it out: that is a Python ref on meta,
    slow for a shape."""
    if t.device.type == "meta" and t.is_contiguous():
        return torch.empty(tuple(t.shape), dtype=t.dtype, device="meta")
    return torch.ones_like(t)


def freeze(model: torch.nn.Module, prefixes: Sequence[str]) -> int:
    """Set ``requires_grad=False`` on the parameters under each module prefix; count them.

    ``"layer1"`` freezes ``layer1.0.conv1.weight`` ... but not ``layer10``. An empty prefix
    or ``"*"`` freezes every parameter. A prefix that names no parameter is an error.
    """
    from cnnscope.errors import InvalidOptionError

    named = list(model.named_parameters())
    frozen = 0
    for prefix in prefixes:
        prefix = prefix.strip().rstrip(".")
        hits = [p for n, p in named
                if prefix in ("", "*") or n == prefix or n.startswith(prefix + ".")]
        if not hits:
            tops = sorted({n.split(".")[0] for n, _ in named})
            raise InvalidOptionError(f"--freeze {prefix!r} names no parameter of the model",
                                     "give a module name such as " + ", ".join(tops[:6]))
        for p in hits:
            if p.requires_grad:
                p.requires_grad_(False)
                frozen += p.numel()
    return frozen
