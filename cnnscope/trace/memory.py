"""The memory of one training (or inference) step, from the tensors that step creates.

``StepMemory`` runs a step of a real PyTorch model (meta tensors for the estimate, CPU or
CUDA tensors for the check) under ``LiveStorage``, a ``TorchDispatchMode`` that sees
every tensor an aten op returns and follows its storage until PyTorch frees it (a weak
reference on the storage: the callback runs when the last tensor using it dies). The sum
of the live storages after each op is the step's memory at that moment; the largest sum
is its peak. Nothing is modelled by hand: what autograd saves for backward, when it frees
it, what the optimizer allocates, what autocast casts, all come from PyTorch running the
step. Every byte at the peak is put in one category:

* ``parameters``, ``buffers``: the model's own tensors (fp32 master weights under autocast);
* ``gradients``: ``.grad`` of the parameters (set by autograd's ``AccumulateGrad``);
* ``optimizer_state``: the optimizer's state tensors (momentum, Adam's moments), present
  from the first step on: the measured step is the second, the steady state;
* ``input``: the batch and its targets;
* ``activations``: tensors autograd saved for backward (a ``saved_tensors_hooks`` pack
  hook sees each one), counted from the moment they are saved until backward frees them;
  under autocast this includes the low-precision weight copies a layer saved;
* ``transient``: everything else alive at the peak (gradients flowing through backward,
  outputs not saved, the optimizer's temporaries): the largest transient.

The module running when a tensor is saved (for the "where the activation memory lives"
table) comes from forward pre/post hooks on every module, for the step only: the
innermost module is what is needed, where ``torch.utils.module_tracker`` keeps the set
of all enclosing ones.

What it cannot see: memory a kernel allocates without returning a tensor (cuDNN or oneDNN
workspaces), the caching allocator's rounding and fragmentation, the CUDA context.
"""

from __future__ import annotations

import weakref
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

import cnnscope.patches as patches
from cnnscope.ops.names import op_name
from cnnscope.ops.registry import autocast_functions, exact_meta_op
from cnnscope.trace import training
from cnnscope.trace.tensors import tensors_in

CATEGORIES = ("parameters", "buffers", "gradients", "optimizer_state", "input",
              "activations", "transient")

OPTIMIZERS = training.OPTIMIZERS
AUTOCAST_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Peak:
    """The live bytes by category at the step's peak, and where it happened."""

    bytes: int = 0
    breakdown: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    phase: str = ""  # forward | backward | optimizer
    op: str = ""  # the aten op after which the peak was reached
    module: str = ""  # the module running then (forward), if any


class ExactMetaOps(TorchDispatchMode):
    """Runs each op on meta through the op registry's kernel where that kernel gives
    PyTorch's meta result to the stride (``meta_exact``): batch norm's own meta kernels are
    Python decompositions, two thirds of the time of planning ResNet-50's step
    (benchmarks/bench_planner.py). Any other op, and any op on a real device, runs as it
    would."""

    @staticmethod
    def run(func, args: tuple, kwargs: dict) -> Any:
        out = exact_meta_op(op_name(func), func, args, kwargs)
        return func(*args, **kwargs) if out is NotImplemented else out

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return self.run(func, args, kwargs or {})


class LiveStorage(ExactMetaOps):
    """Follows every storage an op returns until it is freed; keeps the peak."""

    def __init__(self, workspace: Callable[[Any, tuple, dict], int] | None = None) -> None:
        super().__init__()
        # workspace(func, args, kwargs): bytes an op allocates for itself while it runs and
        # frees before returning (a kernel's scratch buffers), counted at its end.
        self.workspace = workspace
        self.live: dict[int, list] = {}  # storage cdata -> [nbytes, category, weakref]
        self.by_category = dict.fromkeys(CATEGORIES, 0)
        self.current = 0
        self.peak = Peak()
        self.phase = "setup"
        self.module_stack: list[str] = []

    # ---------------------------------------------------------------- bookkeeping

    def track(self, t: torch.Tensor, category: str) -> list | None:
        try:
            st = t.untyped_storage()
        except (RuntimeError, NotImplementedError):  # sparse or other storage-less tensors
            return None
        key = st._cdata
        entry = self.live.get(key)
        if entry is None:
            n = st.nbytes()
            entry = [n, category, weakref.ref(st, self._freer(key))]
            self.live[key] = entry
            self.by_category[category] += n
            self.current += n
        return entry

    def relabel(self, t: torch.Tensor, category: str, only_from: Sequence[str] = ("transient",)) -> bool:
        entry = self.track(t, category)
        if entry is None or entry[1] == category:
            return entry is not None and entry[1] == category
        if entry[1] not in only_from:
            return False
        self.by_category[entry[1]] -= entry[0]
        self.by_category[category] += entry[0]
        entry[1] = category
        return True

    def _freer(self, key: int) -> Callable[[Any], None]:
        def freed(_ref) -> None:
            entry = self.live.get(key)
            if entry is not None and entry[2] is _ref:
                del self.live[key]
                self.by_category[entry[1]] -= entry[0]
                self.current -= entry[0]

        return freed

    def check_peak(self, op: str) -> None:
        if self.current > self.peak.bytes:
            self.peak = Peak(self.current, dict(self.by_category), self.phase, op,
                             self.module_stack[-1] if self.module_stack else "")

    # ---------------------------------------------------------------- dispatch

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = self.run(func, args, kwargs)
        for t in tensors_in(out):
            self.track(t, "transient")
        scratch = self.workspace(func, args, kwargs) if self.workspace is not None else 0
        self.current += scratch  # alive together with the op's outputs, until it returns
        self.by_category["transient"] += scratch
        self.check_peak(func.overloadpacket.__name__)
        self.current -= scratch
        self.by_category["transient"] -= scratch
        return out


# ---------------------------------------------------------------------- autocast on meta

# What torch.autocast runs in the low precision on CUDA (its "lower_precision_fp" list,
# the ops that matter in a CNN) and in float32 ("fp32" list): the op registry's
# ``autocast`` flags. Autocast has no meta backend, so on meta the casts are made here,
# above autograd, as autocast makes them.
_LOW_PRECISION = autocast_functions("low")
_FLOAT32 = autocast_functions("fp32")


class MetaAutocast(TorchFunctionMode):
    """``torch.autocast`` for meta tensors: casts the inputs of the ops autocast casts.

    Like autocast, a cast of a leaf tensor that requires grad (a weight) is made once per
    forward pass and reused (autocast's weight cache).
    """

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype
        self.cache: dict[int, torch.Tensor] = {}

    def __exit__(self, *exc) -> None:
        self.cache.clear()  # as autocast empties its cache on leaving the region
        return super().__exit__(*exc)

    def _cast(self, obj: Any, dtype: torch.dtype) -> Any:
        if isinstance(obj, torch.Tensor):
            if not obj.is_floating_point() or obj.dtype == dtype:
                return obj
            if obj.is_leaf and obj.requires_grad:
                hit = self.cache.get(id(obj))
                if hit is None:
                    hit = self.cache[id(obj)] = obj.to(dtype)
                return hit
            return obj.to(dtype)
        if isinstance(obj, (list, tuple)):
            return type(obj)(self._cast(o, dtype) for o in obj)
        return obj

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _LOW_PRECISION:
            args, kwargs = self._cast(args, self.dtype), {k: self._cast(v, self.dtype)
                                                          for k, v in kwargs.items()}
        elif func in _FLOAT32:
            args, kwargs = self._cast(args, torch.float32), {k: self._cast(v, torch.float32)
                                                             for k, v in kwargs.items()}
        return func(*args, **kwargs)


# ---------------------------------------------------------------------- the step


def make_optimizer(params: list[nn.Parameter], name: str) -> torch.optim.Optimizer:
    """The optimizer ``name``, defined once with bench's (``trace/training.py``: bench trains
    with sgd-nesterov), with ``foreach=True``: what PyTorch picks by default on CUDA, whose
    grouped updates allocate temporaries for all parameters at once.
    """
    return training.make_optimizer(params, name, foreach=True)


def make_targets(output_shapes: Sequence[tuple[int, ...]], device: torch.device
                 ) -> list[tuple[str, torch.Tensor]]:
    """Targets of the kinds ``cnnscope bench`` uses (``training.loss_kind``): class indices for
    (N, C, ...) scores, else a float tensor for a mean squared error; zeros, as the values
    change no memory."""
    targets = []
    for shape in output_shapes:
        if training.loss_kind(shape) == "ce":
            targets.append(("ce", torch.zeros((shape[0], *shape[2:]), dtype=torch.long,
                                              device=device)))
        else:
            targets.append(("mse", torch.zeros(shape, device=device)))
    return targets


def loss_of(output: Any, targets: list[tuple[str, torch.Tensor]]) -> torch.Tensor:
    """Cross-entropy (or MSE) of every output against its target, summed (as bench does)."""
    return training.summed_loss(tensors_in(output), targets)


@dataclass
class StepResult:
    """What one tracked step measured."""

    peak: Peak
    saved_by_module: dict[str, int]  # bytes saved for backward, by the module that saved them
    output_shapes: list[tuple[int, ...]]
    attention: dict[str, int] = field(default_factory=dict)  # kernel -> calls in the step


@contextmanager
def _module_stack(model: nn.Module, tracker: LiveStorage) -> Iterator[None]:
    """Keep ``tracker.module_stack`` = the qualified names of the modules running."""
    handles = []
    for name, m in model.named_modules():
        label = name or "<top>"

        def pre(_m, _args, label=label):
            tracker.module_stack.append(label)

        def post(_m, _args, _out):
            if tracker.module_stack:
                tracker.module_stack.pop()

        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _autocast(device: torch.device, dtype: str):
    if dtype == "fp32":
        return None
    low = AUTOCAST_DTYPES[dtype]
    if device.type == "meta":
        return MetaAutocast(low)
    return torch.autocast(device.type, dtype=low)


def run_step(model: nn.Module, x: torch.Tensor, *, optimizer: torch.optim.Optimizer | None,
             targets: list[tuple[str, torch.Tensor]] | None, dtype: str = "fp32",
             tracker: LiveStorage | None = None, attention: Any = None
             ) -> tuple[Any, LiveStorage | None, dict[str, int]]:
    """One step: forward (+ loss, backward, optimizer step when ``optimizer`` is given).

    With ``tracker`` the step runs under it: the model's tensors, the optimizer state and
    the input are registered first, gradients are relabelled as autograd stores them, and
    saved tensors as autograd saves them (by the module running then). ``attention``: a
    context to run the step in that picks the attention kernel (``PlannedAttention`` on
    meta, ``sdpa_kernel`` on a real device).
    """
    device = x.device
    saved_by: dict[str, int] = {}
    with ExitStack() as stack:
        if attention is not None:  # outside autocast: it sees the inputs autocast cast
            stack.enter_context(attention)
        if tracker is not None:
            for p in model.parameters():
                tracker.track(p, "parameters")
            for b in model.buffers():
                tracker.track(b, "buffers")
            if optimizer is not None:
                for state in optimizer.state.values():
                    for t in state.values():
                        if isinstance(t, torch.Tensor):
                            tracker.track(t, "optimizer_state")
            tracker.track(x, "input")
            for _, t in targets or []:
                tracker.track(t, "input")

            def on_grad(p: torch.Tensor) -> None:
                if p.grad is not None:
                    tracker.relabel(p.grad, "gradients")

            for p in model.parameters():
                if p.requires_grad:
                    stack.callback(p.register_post_accumulate_grad_hook(on_grad).remove)

            seen: set[int] = set()

            def pack(t: torch.Tensor) -> torch.Tensor:
                entry = tracker.track(t, "activations")
                if entry is not None and tracker.relabel(t, "activations"):
                    owner = tracker.module_stack[-1] if tracker.module_stack else "<outside modules>"
                    key = t.untyped_storage()._cdata
                    if key not in seen:
                        seen.add(key)
                        saved_by[owner] = saved_by.get(owner, 0) + entry[0]
                # detach: a saved output must not hold its own grad_fn (a reference cycle
                # would keep it alive until the garbage collector runs)
                return t.detach()

            stack.enter_context(_module_stack(model, tracker))
            stack.enter_context(tracker)
            if optimizer is not None:
                stack.enter_context(torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t))
        if optimizer is None:
            stack.enter_context(torch.no_grad())
        cast = _autocast(device, dtype)
        if tracker is not None:
            tracker.phase = "forward"
        with cast if cast is not None else ExitStack():
            output = model(x)
            loss = loss_of(output, targets) if optimizer is not None else None
        if optimizer is not None:
            if tracker is not None:
                tracker.phase = "backward"
            loss.backward()
            del loss
            if tracker is not None:
                tracker.phase = "optimizer"
            optimizer.step()
            if tracker is not None:
                tracker.check_peak("step")
    return output, tracker, saved_by


def measure_step(model: nn.Module, input_size: Sequence[int], batch: int, device: torch.device, *,
                 optimizer: str = "sgd", dtype: str = "fp32", inference: bool = False,
                 channels_last: bool = False, warm: bool = True,
                 attention: Callable[[], Any] | None = None,
                 workspace: Callable[[Any, tuple, dict], int] | None = None) -> StepResult:
    """The peak of one steady-state step of ``model`` (already on ``device``).

    Training: a first step creates the gradients and the optimizer state, the gradients
    are released (``zero_grad(set_to_none=True)``, as every training loop does before the
    next forward) and the second step is measured. Inference: ``eval()`` and one forward
    pass without autograd. ``attention()`` makes a fresh attention context for each step
    run (see ``run_step``); the last one made is the measured step's. ``workspace``:
    the scratch bytes of an op (see ``LiveStorage``).
    """
    make = attention or (lambda: None)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    shape = (batch, *input_size)
    fmt = torch.channels_last if channels_last and len(shape) == 4 else torch.contiguous_format
    x = torch.empty(shape, device=device).contiguous(memory_format=fmt) if device.type == "meta" \
        else torch.randn(shape, device=device).contiguous(memory_format=fmt)
    if inference:
        model.eval()
        tracker = LiveStorage(workspace)
        ctx = make()
        out, _, _ = run_step(model, x, optimizer=None, targets=None, dtype=dtype, tracker=tracker,
                             attention=ctx)
        return StepResult(tracker.peak, {}, [tuple(t.shape) for t in tensors_in(out)],
                          dict(getattr(ctx, "used", {})))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(trainable, optimizer)
    # The steps before the measured one, on meta with the same exact kernels as it
    untracked = ExactMetaOps() if device.type == "meta" else ExitStack()
    with untracked:
        with torch.no_grad(), make() or ExitStack():  # the output shapes, for the targets
            shapes = [tuple(t.shape) for t in tensors_in(model(x))]
        targets = make_targets(shapes, device)
        if warm:
            run_step(model, x, optimizer=opt, targets=targets, dtype=dtype, attention=make())
    opt.zero_grad(set_to_none=True)
    tracker = LiveStorage(workspace)
    ctx = make()
    _, _, saved_by = run_step(model, x, optimizer=opt, targets=targets, dtype=dtype,
                              tracker=tracker, attention=ctx)
    opt.zero_grad(set_to_none=True)
    return StepResult(tracker.peak, saved_by, shapes, dict(getattr(ctx, "used", {})))


patches.fill_dynamo_cache(ExactMetaOps)
patches.fill_dynamo_cache(LiveStorage)
