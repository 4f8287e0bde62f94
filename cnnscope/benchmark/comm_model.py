"""On-paper cost of data-parallel training: gradient bytes and ring all-reduce time.

Pure arithmetic, no torch (the renderers and the tests use it without it).

Data-parallel training (``torch.nn.parallel.DistributedDataParallel``) all-reduces every
trainable parameter's gradient once per step, in buckets of ``bucket_cap_mb`` (25 MiB by
default) launched while the backward pass is still running.

Ring all-reduce of ``S`` bytes over ``p`` ranks (Patarasuk & Yuan, "Bandwidth optimal
all-reduce algorithms for clusters of workstations", JPDC 2009; Thakur, Rabenseifner &
Gropp, "Optimization of collective communication operations in MPICH", IJHPCA 2005):
a reduce-scatter then an all-gather, each ``p - 1`` steps that move ``S / p`` bytes over
every link, so

    T(p) = 2 (p - 1) / p * S / B  +  2 (p - 1) * alpha          (per all-reduce)

with ``B`` the bandwidth of one link (bytes/s) and ``alpha`` the latency of one step.
DDP runs one all-reduce per bucket, so the latency term is paid once per bucket. The
"bus bandwidth" of a measured all-reduce (nccl-tests' ``busbw``, doc/PERFORMANCE.md) is
the ``B`` that the formula gives back: ``2 (p - 1) / p * S / t``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

# DDP's defaults (torch/nn/parallel/distributed.py): bucket_cap_mb=25 ("MB" there means
# MiB: bucket_bytes_cap = int(bucket_cap_mb * 1024 * 1024)); the first bucket is 1 MiB
# (torch.distributed._DEFAULT_FIRST_BUCKET_BYTES).
DEFAULT_BUCKET_MB = 25.0
FIRST_BUCKET_BYTES = 1024 * 1024

# Bytes per element of the gradient DDP reduces. Gradients have the parameters' dtype;
# cnnscope's bf16/fp16 rows use autocast, which keeps the parameters (and so the
# gradients) in float32, so every dtype of ``cnnscope bench`` reduces 4-byte gradients.
GRAD_BYTES = {"fp32": 4, "tf32": 4, "bf16": 4, "fp16": 4}

COMM_CONVENTION = (
    "allreduce_bytes = trainable parameters x 4 bytes (float32 gradients: bf16/fp16 rows "
    "use autocast, which keeps float32 weights). Weak scaling: every rank runs the same "
    "per-rank batch; scaling_efficiency = single-process step / DDP step (1.0 = perfect). "
    "exposed_comm = DDP step - the same DDP step under no_sync() (no gradient all-reduce): "
    "the communication the backward pass did not hide. Prediction: ring all-reduce "
    "T(p) = 2(p-1)/p x bytes / link bandwidth + 2(p-1) x latency x buckets; efficiency "
    "between no overlap, t1/(t1+T), and full overlap with the backward, t1/(t1+max(0, T-bwd))."
)


def allreduce_bytes(trainable_params: int, dtype: str = "fp32") -> int:
    """Gradient bytes DDP reduces per step: trainable parameters x gradient element size."""
    if trainable_params < 0:
        raise ValueError("a parameter count cannot be negative")
    return int(trainable_params) * GRAD_BYTES[dtype]


def bucket_count(nbytes: int, bucket_cap_mb: float | None = None) -> int:
    """How many buckets DDP makes of ``nbytes`` of gradients (an estimate: DDP fills
    buckets parameter by parameter and never splits one, so a real count can be higher).

    DDP's default (``bucket_cap_mb=None``): a first bucket of 1 MiB, then 25 MiB each.
    A size given explicitly is used for every bucket, the first included.
    """
    if nbytes <= 0:
        return 0
    cap = int((DEFAULT_BUCKET_MB if bucket_cap_mb is None else bucket_cap_mb) * 1024 * 1024)
    first = FIRST_BUCKET_BYTES if bucket_cap_mb is None else cap
    if nbytes <= first:
        return 1
    return 1 + math.ceil((nbytes - first) / cap)


def gbps_to_bytes_per_s(gbps: float) -> float:
    """Link speed in gigabits per second (10^9 bit/s, as network links are quoted) to bytes/s."""
    return gbps * 1e9 / 8


def ring_allreduce_s(nbytes: int, world_size: int, link_gbps: float, *,
                     latency_us: float = 0.0, buckets: int = 1) -> float:
    """Seconds for a ring all-reduce of ``nbytes`` over ``world_size`` ranks (see the module
    docstring); ``buckets`` separate all-reduces pay the latency term each."""
    if world_size < 1:
        raise ValueError("world size must be at least 1")
    if link_gbps <= 0:
        raise ValueError("link bandwidth must be positive")
    if world_size == 1 or nbytes <= 0:
        return 0.0
    p = world_size
    bandwidth_s = 2 * (p - 1) / p * nbytes / gbps_to_bytes_per_s(link_gbps)
    latency_s = 2 * (p - 1) * latency_us * 1e-6 * max(1, buckets)
    return bandwidth_s + latency_s


def bus_gbps(nbytes: int, world_size: int, seconds: float) -> float | None:
    """The link bandwidth (Gbit/s) a measured all-reduce of ``nbytes`` reached: nccl-tests'
    bus bandwidth, 2(p-1)/p x bytes / time. None when it cannot be defined."""
    if world_size < 2 or seconds <= 0 or nbytes <= 0:
        return None
    return 2 * (world_size - 1) / world_size * nbytes / seconds * 8 / 1e9


@dataclass(frozen=True)
class ScalingPrediction:
    """What ``world_size`` ranks would give, on paper, for one model and per-rank batch."""

    world_size: int
    link_gbps: float
    latency_us: float
    allreduce_ms: float  # ring all-reduce of the gradients, all buckets
    step_ms_no_overlap: float  # single step + all-reduce
    step_ms_full_overlap: float  # single step + what the backward cannot hide
    efficiency_no_overlap: float  # single / step_ms_no_overlap
    efficiency_full_overlap: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ScalingPrediction":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def predict(nbytes: int, single_ms: float, bwd_ms: float | None, world_sizes: Sequence[int],
            link_gbps: float, *, latency_us: float = 0.0, buckets: int = 1
            ) -> list[ScalingPrediction]:
    """Weak-scaling predictions at each world size: the single-process step ``single_ms``
    plus the ring all-reduce, either not overlapped at all or hidden behind the backward
    pass (``bwd_ms``; None counts as no overlap)."""
    if single_ms <= 0:
        raise ValueError("the single-process step time must be positive")
    out = []
    for p in world_sizes:
        t = ring_allreduce_s(nbytes, p, link_gbps, latency_us=latency_us, buckets=buckets) * 1e3
        worst = single_ms + t
        best = single_ms + max(0.0, t - (bwd_ms or 0.0))
        out.append(ScalingPrediction(world_size=int(p), link_gbps=float(link_gbps),
                                     latency_us=float(latency_us), allreduce_ms=t,
                                     step_ms_no_overlap=worst, step_ms_full_overlap=best,
                                     efficiency_no_overlap=single_ms / worst,
                                     efficiency_full_overlap=single_ms / best))
    return out
