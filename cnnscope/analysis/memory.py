"""Training-memory planner (``cnnscope memory``): the peak of one steady-state step.

``StepPlanner`` builds the model on the meta device and runs a real training step on it
(``cnnscope.trace.memory``): forward, loss, backward, optimizer step, twice, measuring
the second. Nothing is allocated, so any batch size costs the same few seconds, and the
peak comes from what PyTorch itself keeps alive, not from a formula.
``largest_batch_within`` finds the largest batch whose peak fits a budget by binary
search on meta. ``cnnscope.api.plan_memory`` and ``fit_batch`` resolve the model and
drive them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Sequence

from cnnscope.errors import InvalidOptionError
from cnnscope.results import Shown
from cnnscope.units import bytes_h

CATEGORIES = ("parameters", "buffers", "gradients", "optimizer_state", "input",
              "activations", "transient")
OPTIMIZERS = ("sgd", "sgd-nesterov", "adam", "adamw")
MEMORY_DTYPES = ("fp32", "bf16", "fp16")
ATTENTION = ("auto", "math", "flash", "efficient", "cudnn")
# What each attention kernel keeps for backward besides q, k, v and its output.
ATTENTION_SAVES = {
    "math": "the B x H x Nq x Nk attention probabilities",
    "flash": "a B x H x Nq log-sum-exp, no probabilities",
    "efficient": "a B x H x Nq log-sum-exp (Nq rounded up to 32), no probabilities",
    "cudnn": "a B x H x Nq log-sum-exp, no probabilities",
}
ATTENTION_OPS = {
    ("cpu", "math"): "math path: bmm, _safe_softmax, bmm",
    ("cpu", "flash"): "_scaled_dot_product_flash_attention_for_cpu",
    ("cuda", "math"): "math path: bmm, _safe_softmax, bmm",
    ("cuda", "flash"): "_scaled_dot_product_flash_attention",
    ("cuda", "efficient"): "_scaled_dot_product_efficient_attention",
    ("cuda", "cudnn"): "_scaled_dot_product_cudnn_attention",
}

CONVENTION = (
    "peak: the most bytes of tensor storage alive at once during one steady-state step "
    "(the second: gradients released with zero_grad(set_to_none=True), optimizer state "
    "present), found by running the step on meta tensors and following every storage "
    "PyTorch creates and frees. activations: tensors autograd saved for backward; "
    "transient: everything else alive at the peak, with the CPU flash attention kernel's "
    "per-thread blocks. Not included: other kernel workspaces (oneDNN, cuDNN, cuBLAS), "
    "allocator rounding and caching, the CUDA context. 1 MiB = 2^20 bytes."
)

MAX_BUDGET = 2**60  # 1 EiB: a --fit budget above it is a typo, and batches stop long before
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def parse_bytes(text: str) -> int:
    """``"80GiB"`` -> 85899345920; ``"40GB"`` -> 40 x 10^9; a bare number is bytes."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text)[:200])
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise InvalidOptionError(f"malformed memory size {str(text)[:40]!r}",
                                 "write it as a number and a unit, e.g. 80GiB, 24GB or 512MiB")
    # Exact arithmetic: float("1" + 400 zeros) is inf, and int(inf) an OverflowError.
    digits = m.group(1).split(".")[0].lstrip("0")  # the integer part decides the size
    n = int(Fraction(m.group(1)) * _UNITS[unit]) if len(digits) <= 40 else MAX_BUDGET + 1
    if n <= 0:
        raise InvalidOptionError(f"memory size {text!r} is not positive", "e.g. --fit 80GiB")
    if n > MAX_BUDGET:
        raise InvalidOptionError(f"memory size {str(text)[:40]!r} is more than 1 EiB "
                                 "(2**60 bytes), more than any machine holds",
                                 "e.g. --fit 80GiB")
    return n


@dataclass(frozen=True)
class MemoryPlan(Shown):
    """The peak memory of one step and what it is made of (bytes, exact)."""

    model: str
    input_size: tuple[int, ...]
    batch: int
    dtype: str
    optimizer: str | None  # None for --inference
    inference: bool
    channels_last: bool
    peak_bytes: int
    breakdown: dict[str, int]  # category -> bytes at the peak (sums to peak_bytes)
    peak_phase: str  # forward | backward | optimizer
    peak_op: str
    saved_by_module: tuple[tuple[str, int], ...]  # (module, bytes saved for backward)
    params: int
    trainable_params: int
    budget_bytes: int | None = None  # --fit: the budget searched against
    fit_batch: int | None = None  # --fit: the largest batch whose peak fits
    tried: tuple[tuple[int, int], ...] = ()  # --fit: (batch, peak) of every batch tried
    # --fit: the largest batch searched; fit_batch == search_limit with every_batch_fits
    # says only that no batch up to the limit fills the budget, not that it is the largest.
    search_limit: int | None = None
    every_batch_fits: bool = False
    notes: tuple[str, ...] = field(default=())
    convention: str = CONVENTION
    device: str = "cpu"  # the device planned for (decides the attention kernel)
    attention: tuple[tuple[str, int], ...] = ()  # (kernel, calls in the step)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``peak_bytes`` (int) and ``breakdown`` at the top level."""
        d = {
            "model": self.model,
            "input_size": list(self.input_size),
            "batch": self.batch,
            "dtype": self.dtype,
            "optimizer": self.optimizer,
            "inference": self.inference,
            "channels_last": self.channels_last,
            "peak_bytes": self.peak_bytes,
            "breakdown": dict(self.breakdown),
            "peak_phase": self.peak_phase,
            "peak_op": self.peak_op,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "saved_by_module": [{"module": m, "bytes": b} for m, b in self.saved_by_module],
            "device": self.device,
            "attention": [{"kernel": k, "op": attention_op(self.device, k), "calls": n}
                          for k, n in self.attention],
            "notes": list(self.notes),
            "convention": self.convention,
        }
        if self.budget_bytes is not None:
            d["fit"] = {"budget_bytes": self.budget_bytes, "batch": self.fit_batch,
                        "search_limit": self.search_limit,
                        "every_batch_fits": self.every_batch_fits,
                        "tried": [{"batch": b, "peak_bytes": p} for b, p in self.tried]}
        return d


def parse_device(text: str) -> tuple[str, tuple[int, int]]:
    """The device a plan is for: ``cpu``; ``cuda`` (an sm_90 GPU, H100 class) or
    ``cuda:smXY`` (``cuda:sm80``: A100). The architecture decides the attention kernel."""
    t = str(text).strip().lower()
    if t == "cpu":
        return "cpu", (0, 0)
    if t == "cuda":
        return "cuda", (9, 0)
    digits = t[len("cuda:sm"):]
    # NVIDIA's compute capabilities run from sm_30 (Kepler) to sm_12x (Blackwell) today;
    # a wider range keeps room for the next ones without taking sm999 for a GPU.
    if t.startswith("cuda:sm") and digits.isdigit() and len(digits) in (2, 3) \
            and 3 <= int(digits[:-1]) <= 15:
        return "cuda", (int(digits[:-1]), int(digits[-1]))
    raise InvalidOptionError(f"unknown --device {text!r}",
                             "use cpu, cuda (an sm_90 GPU) or cuda:smXY, e.g. cuda:sm80")


def check_options(dtype: str, optimizer: str, attention: str = "auto",
                  device: str = "cpu") -> None:
    parse_device(device)
    if attention not in ATTENTION:
        raise InvalidOptionError(f"unknown --attention {attention!r}",
                                 "use " + ", ".join(ATTENTION) + " (auto: the kernel PyTorch picks)")
    if dtype not in MEMORY_DTYPES:
        raise InvalidOptionError(f"unknown dtype {dtype!r}",
                                 "use fp32, bf16 or fp16 (autocast with fp32 master weights)")
    if optimizer not in OPTIMIZERS:
        raise InvalidOptionError(f"unknown optimizer {optimizer!r}", "use " + ", ".join(OPTIMIZERS))


def attention_op(device: str, kernel: str) -> str:
    """The aten op (or path) a kernel runs on ``device`` (``cuda:sm80`` -> cuda)."""
    return ATTENTION_OPS.get((device.split(":")[0], kernel), kernel)


def attention_lines(plan: "MemoryPlan") -> list[str]:
    """One line per attention kernel the step ran: which, how often, what it keeps."""
    return [f"attention on {plan.device}: {kernel} ({attention_op(plan.device, kernel)}), "
            f"{n} call{'s' if n != 1 else ''}; keeps {ATTENTION_SAVES[kernel]} for backward"
            for kernel, n in plan.attention]


def largest_batch_within(plan_at: Callable[[int], MemoryPlan], budget_bytes: int,
                         max_batch: int = 1 << 20) -> MemoryPlan:
    """The plan at the largest batch whose peak fits ``budget_bytes`` (``--fit``).

    ``plan_at(batch)`` gives the plan at one batch (a meta step each). Doubles the batch
    until the peak exceeds the budget, then bisects. A budget that batch 1 already
    exceeds is an error.
    """
    tried: dict[int, MemoryPlan] = {}

    def peak(b: int) -> int:
        if b not in tried:
            tried[b] = plan_at(b)
        return tried[b].peak_bytes

    if peak(1) > budget_bytes:
        raise InvalidOptionError(
            f"{tried[1].model} does not fit in {bytes_h(budget_bytes)} even at batch 1 "
            f"(peak {bytes_h(tried[1].peak_bytes)})",
            "give a larger --fit, --dtype bf16, or --freeze some layers")
    lo, hi = 1, 2
    while hi <= max_batch and peak(hi) <= budget_bytes:
        lo, hi = hi, hi * 2
    if hi > max_batch and lo < max_batch:  # a limit that is no power of two: try it too
        hi = max_batch + 1 if peak(max_batch) <= budget_bytes else max_batch
        lo = max_batch if hi > max_batch else lo
    if hi > max_batch:
        best = lo
    else:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if peak(mid) <= budget_bytes:
                lo = mid
            else:
                hi = mid
        best = lo
    plan = tried[best]
    from dataclasses import replace

    return replace(plan, budget_bytes=budget_bytes, fit_batch=best, search_limit=max_batch,
                   every_batch_fits=best == max_batch and hi > max_batch,
                   tried=tuple(sorted((b, p.peak_bytes) for b, p in tried.items())))


def _largest_conv_weight(net) -> int:
    """Bytes of the largest convolution weight (the unit of oneDNN's scratch)."""
    from torch.nn.modules.conv import _ConvNd

    return max((m.weight.numel() * m.weight.element_size() for m in net.modules()
                if isinstance(m, _ConvNd) and m.weight is not None), default=0)


class StepPlanner:
    """One resolved model on meta with its optimizer, stepped at any batch.

    ``cnnscope.api.plan_memory`` resolves the spec and checks the input size first.
    """

    def __init__(self, source, size: tuple[int, ...], dtype: str, optimizer: str,
                 inference: bool, channels_last: bool, freeze: Sequence[str],
                 device: str = "cpu", attention: str = "auto") -> None:
        import torch

        self.target_device, self.arch = parse_device(device)
        self.device_label = str(device).strip().lower()
        self.attention = attention
        self.source = source
        self.size = tuple(size)
        self.dtype, self.optimizer, self.inference = dtype, optimizer, inference
        self.channels_last = channels_last
        self.freeze = tuple(freeze)
        self.device = torch.device("meta")

    def plan(self, batch: int) -> MemoryPlan:
        import torch

        from cnnscope.trace.backward import freeze as freeze_params
        from cnnscope.trace.memory import measure_step
        from cnnscope.trace.sizes import check_batch

        check_batch(batch)
        net = self.source.build(self.device)
        if self.freeze:
            freeze_params(net, self.freeze)
        params = sum(p.numel() for p in net.parameters())
        trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
        notes = []
        if not trainable and not self.inference:
            raise InvalidOptionError("every parameter is frozen: nothing to train",
                                     "use --inference, or freeze fewer modules")
        from functools import partial

        from cnnscope.trace.attention_kernels import PlannedAttention, Target, cpu_flash_workspace

        target = Target(self.target_device, self.arch)
        workspace = None
        if self.target_device == "cpu":
            workspace = partial(cpu_flash_workspace, threads=torch.get_num_threads())
        try:
            result = measure_step(net, self.size, batch, self.device, optimizer=self.optimizer,
                                  dtype=self.dtype, inference=self.inference,
                                  channels_last=self.channels_last,
                                  attention=lambda: PlannedAttention(target, self.attention),
                                  workspace=workspace)
        except InvalidOptionError:
            raise
        except Exception as exc:  # noqa: BLE001 - the model's own failure, said in one line
            from cnnscope.errors import TraceError

            what = "forward pass" if self.inference else "training step"
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TraceError(f"{self.source.name} cannot run a {what} on input "
                             f"{batch}x{'x'.join(map(str, self.size))}: {text}",
                             "try a larger --input or --batch") from None
        peak = result.peak
        conv_weight = _largest_conv_weight(net)
        if self.target_device == "cpu" and not self.inference and conv_weight:
            notes.append(
                f"not counted: oneDNN's convolution scratch on the CPU, under 1% of the peak on "
                f"AVX-512 CPUs; on AVX2 CPUs up to 4 x threads x the largest convolution weight "
                f"(4 x {torch.get_num_threads()} x {bytes_h(conv_weight)} here) when a feature "
                f"map is 2x2 or smaller")
        if self.dtype != "fp32":
            notes.append(f"{self.dtype}: autocast as on CUDA (convolutions and matmuls in "
                         f"{self.dtype}, fp32 master weights and optimizer state)")
        return MemoryPlan(
            model=self.source.name, input_size=self.size, batch=batch, dtype=self.dtype,
            optimizer=None if self.inference else self.optimizer, inference=self.inference,
            channels_last=self.channels_last, peak_bytes=peak.bytes,
            breakdown={c: peak.breakdown.get(c, 0) for c in CATEGORIES},
            peak_phase=peak.phase, peak_op=peak.op,
            saved_by_module=tuple(sorted(result.saved_by_module.items(),
                                         key=lambda kv: (-kv[1], kv[0]))),
            params=params, trainable_params=trainable, notes=tuple(notes),
            device=self.device_label,
            attention=tuple(sorted(result.attention.items())))
