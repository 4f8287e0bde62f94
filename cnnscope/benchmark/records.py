"""What a benchmark produces: rows, per-layer timings, ceilings. Plain dataclasses, no torch.

The renderers in ``cnnscope.report.bench_render`` read these; nothing here imports torch,
so a renderer or a test can use them without it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cnnscope.benchmark.comm_model import ScalingPrediction
from cnnscope.results import RunStatus, Shown

STATUSES = ("ok", "oom", "error", "unsupported")

# Printed under every bench table and written into every bench file.
FLOP_BASIS = (
    "achieved TFLOP/s are matmul-equivalent: 2 x the traced MACs (convolutions, linear "
    "layers, matmuls; cnnscope's count, elementwise work excluded) divided by the median "
    "time, the same basis as the dense matmul ceiling (2*N^3 per N x N product). "
    "Training: forward = the forward MACs, backward = the backward MACs counted from the ops "
    "autograd runs (input gradients where needed, weight gradients of trainable layers; "
    "2 x forward less the first layer's input gradient for a fully trainable net), whole "
    "step = both; the optimizer's own work is not counted."
)


@dataclass(frozen=True, kw_only=True)
class _MeasuredRoof:
    """What a roof measurement (``MatmulCeiling``, ``CopyBandwidth``) says of itself, and
    its JSON round trip. Keyword-only, so each measurement's own fields (without defaults)
    can follow; a base's fields come first in a dataclass, so ``to_dict`` writes them last,
    where the JSON has always had them."""

    cached: bool = False  # read from the cache file rather than measured in this run
    # How clean the measurement was (cnnscope.benchmark.stability): IQR/median of its
    # samples, the verdict and its causes, the load average and other processes' share
    # of the usable cores while it ran, and (CPU) the torch threads it used.
    spread: float | None = None
    stable: bool | None = None
    load_average: float | None = None
    other_cpu: float | None = None
    causes: tuple[str, ...] = ()
    threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        own = {name: value for name, value in data.items() if name not in _ROOF_FIELDS}
        return {**own, **{name: data[name] for name in _ROOF_FIELDS}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        own = _own_fields(cls, data)
        own["causes"] = tuple(data.get("causes") or ())
        return cls(**own)


_ROOF_FIELDS = tuple(f.name for f in fields(_MeasuredRoof))


@dataclass(frozen=True)
class MatmulCeiling(_MeasuredRoof):
    """The best dense matmul rate measured on a device in one dtype."""

    device_name: str
    dtype: str  # "fp32" | "tf32" | "bf16" | "fp16"
    tflops: float  # 2*N^3 / median time of one N x N @ N x N product (sustained)
    n: int  # the N that gave the best rate
    measured_at: str  # ISO timestamp (UTC)
    torch_version: str


@dataclass(frozen=True)
class CopyBandwidth(_MeasuredRoof):
    """The best copy rate measured on a device: the memory roof of the roofline."""

    device_name: str
    bytes_per_s: float  # 2 x nbytes (read + write) / median copy time
    nbytes: int  # size of the copied tensor
    measured_at: str  # ISO timestamp (UTC)
    torch_version: str


@dataclass(frozen=True)
class LayerTiming:
    """One leaf layer call's median forward (and backward) time, joined with its MACs."""

    name: str  # qualified module name, "#2" for its second call (as in the trace)
    type: str  # module class
    macs: int | None  # forward MACs from the trace (None when the trace has no such layer)
    fwd_ms: float
    bwd_ms: float | None = None  # None for inference or when no gradient reached the layer
    bwd_macs: int | None = None  # counted backward MACs of this layer (None: not counted)
    # Roofline (forward pass): the trace's FLOPs and bytes_moved of this call, bytes at the
    # row's element size; bound = "memory" | "compute" against the device's measured roofs.
    flops: int | None = None
    bytes_moved: int | None = None
    bound: str | None = None

    @property
    def arithmetic_intensity(self) -> float | None:
        """FLOPs per byte moved (forward)."""
        return self.flops / self.bytes_moved if self.flops is not None and self.bytes_moved else None

    @property
    def achieved_flops(self) -> float | None:
        """FLOP/s of the forward call (all FLOPs, elementwise included)."""
        return self.flops / (self.fwd_ms * 1e-3) if self.flops is not None and self.fwd_ms > 0 else None

    @property
    def achieved_bandwidth(self) -> float | None:
        """Bytes/s of the forward call, at the minimal traffic ``bytes_moved``."""
        return (self.bytes_moved / (self.fwd_ms * 1e-3)
                if self.bytes_moved is not None and self.fwd_ms > 0 else None)

    @property
    def fwd_tflops(self) -> float | None:
        return _tflops(2 * self.macs, self.fwd_ms) if self.macs else None

    @property
    def bwd_tflops(self) -> float | None:
        # The counted backward MACs (input gradient where needed + weight gradient); the
        # 2 x forward estimate only for a layer whose backward was not counted.
        work = self.bwd_macs if self.bwd_macs is not None else (2 * self.macs if self.macs else 0)
        return _tflops(2 * work, self.bwd_ms) if work and self.bwd_ms else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fwd_tflops"] = self.fwd_tflops
        d["bwd_tflops"] = self.bwd_tflops
        d["arithmetic_intensity"] = self.arithmetic_intensity
        d["achieved_flops"] = self.achieved_flops
        d["achieved_bandwidth"] = self.achieved_bandwidth
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LayerTiming":
        return cls(**_own_fields(cls, data))  # the rates are derived again, not read


@dataclass(frozen=True)
class PerLayer:
    """Per-layer timings of one row and the totals that show the cost of measuring them."""

    layers: tuple[LayerTiming, ...]
    samples: int  # hooked iterations the medians come from
    sum_fwd_ms: float  # sum of the layers' median forward times
    hooked_fwd_ms: float  # median whole forward pass with the hooks on
    clean_fwd_ms: float | None  # median whole forward pass without hooks (the row's figure)
    sum_bwd_ms: float | None = None
    hooked_bwd_ms: float | None = None
    clean_bwd_ms: float | None = None
    # Backward of the loss and of the ops after the last hooked layer (before any layer's
    # backward starts): time charged to no layer.
    loss_bwd_ms: float | None = None
    # The roofs the layers' ``bound`` was judged against (None: not measured).
    peak_flops: float | None = None  # FLOP/s: the dense matmul ceiling of the row's dtype
    peak_bandwidth: float | None = None  # bytes/s: the measured copy bandwidth

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "layers"}
        d["layers"] = [layer.to_dict() for layer in self.layers]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PerLayer":
        own = _own_fields(cls, data)
        own["layers"] = tuple(LayerTiming.from_dict(layer) for layer in data.get("layers", ()))
        return cls(**own)


@dataclass(frozen=True)
class DdpStats:
    """What a data-parallel (DDP) training row adds: world, gradient bytes, the single-process
    step it is compared with, the communication it could not hide, and the prediction.

    The row's own timing fields are the DDP step of the slowest rank (a synchronous job
    runs at its pace); ``rank_median_ms`` holds every rank's median.
    """

    world_size: int
    backend: str  # "gloo" | "nccl"
    bucket_cap_mb: float | None  # None: DDP's default (first bucket 1 MiB, then 25 MiB)
    buckets: int | None  # buckets DDP built after its first-iteration rebuild (None: unknown)
    trainable_params: int
    allreduce_bytes: int  # gradient bytes all-reduced per step
    single_median_ms: float | None  # same per-rank batch, one process, no DDP
    bucket_bytes: tuple[int, ...] = ()  # DDP's own bucket sizes (its logging data), bytes
    single_iqr_ms: float | None = None
    single_bwd_ms: float | None = None  # its backward (what the all-reduce can hide behind)
    nosync_median_ms: float | None = None  # the DDP step under no_sync(): no all-reduce
    exposed_comm_ms: float | None = None  # DDP step - no_sync step
    scaling_efficiency: float | None = None  # single_median_ms / DDP step (weak scaling)
    allreduce_ms: float | None = None  # median of a lone all-reduce of allreduce_bytes
    bus_gbps: float | None = None  # the bandwidth that lone all-reduce reached (nccl-tests busbw)
    rank_median_ms: tuple[float, ...] = ()
    threads_per_rank: int | None = None  # CPU: torch threads of each rank (and the single run)
    predictions: tuple[ScalingPrediction, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "predictions"}
        d["rank_median_ms"] = list(self.rank_median_ms)
        d["bucket_bytes"] = list(self.bucket_bytes)
        d["predictions"] = [p.to_dict() for p in self.predictions]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DdpStats":
        own = _own_fields(cls, data)
        own["rank_median_ms"] = tuple(data.get("rank_median_ms") or ())
        own["bucket_bytes"] = tuple(data.get("bucket_bytes") or ())
        own["predictions"] = tuple(ScalingPrediction.from_dict(p)
                                   for p in data.get("predictions") or ())
        return cls(**own)


@dataclass(frozen=True)
class BenchRow:
    """One (model, device, batch, dtype, mode) measurement.

    Timing fields are None unless ``status`` is "ok": a row is never reported from a run
    that failed. ``median_ms`` is the whole pass (inference) or the whole training step
    (forward + loss + backward + optimizer step).
    """

    model: str
    device: str  # "cpu", "cuda:0"
    device_name: str
    batch: int
    dtype: str
    mode: str  # "infer" | "train"
    input_size: tuple[int, ...]
    status: RunStatus = RunStatus.OK  # a plain string is converted
    error: str | None = None
    samples: int = 0
    median_ms: float | None = None
    p10_ms: float | None = None
    p25_ms: float | None = None
    p75_ms: float | None = None
    p90_ms: float | None = None
    mean_ms: float | None = None
    fwd_median_ms: float | None = None  # training only: forward + loss
    fwd_iqr_ms: float | None = None
    bwd_median_ms: float | None = None  # training only: loss.backward()
    bwd_iqr_ms: float | None = None
    opt_median_ms: float | None = None  # training only: optimizer.step()
    throughput: float | None = None  # images/s at the median: batch / median
    throughput_sustained: float | None = None  # images/s over the whole timed run
    peak_memory_bytes: int | None = None
    peak_memory_kind: str | None = None  # what the peak measures (device allocator / process RSS)
    macs: int | None = None  # forward MACs of the traced model at this batch
    backward_macs: int | None = None  # training: counted backward MACs at this batch
    achieved_tflops: float | None = None  # whole pass / step, matmul-equivalent
    fwd_tflops: float | None = None
    bwd_tflops: float | None = None
    ceiling_tflops: float | None = None  # dense matmul ceiling, same device and dtype
    ceiling_fraction: float | None = None  # achieved / ceiling
    warmup_iters: int = 0
    warmup_settled: bool | None = None  # None: fixed warm-up, settling not checked
    # Was the measurement clean (cnnscope.benchmark.stability)? spread = IQR / median of the
    # timed samples; stable = no cause found; unstable_causes names each one. other_cpu
    # and cpu_steal: shares of the usable cores' time during the timed iterations taken
    # by other processes and by the hypervisor; load_average: one-minute, at the end.
    spread: float | None = None
    stable: bool | None = None  # None: not judged (failed row, or an older file)
    unstable_causes: tuple[str, ...] = ()
    other_cpu: float | None = None
    cpu_steal: float | None = None
    load_average: float | None = None
    threads: int | None = None  # torch intra-op threads of the row
    ran_eager: bool | None = None  # --compile: True when dynamo compiled nothing (None: eager row)
    channels_last: bool = False
    compiled: bool = False
    cuda_graphs: bool = False
    notes: tuple[str, ...] = ()
    per_layer: PerLayer | None = None
    ddp: DdpStats | None = None  # data-parallel rows only (cnnscope bench --ddp N)

    def __post_init__(self) -> None:
        if type(self.status) is not RunStatus:
            object.__setattr__(self, "status", RunStatus(self.status))

    @property
    def iqr_ms(self) -> float | None:
        if self.p75_ms is None or self.p25_ms is None:
            return None
        return self.p75_ms - self.p25_ms

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("per_layer", "ddp")}
        d["input_size"] = list(self.input_size)
        d["notes"] = list(self.notes)
        d["unstable_causes"] = list(self.unstable_causes)
        d["iqr_ms"] = self.iqr_ms
        d["per_layer"] = self.per_layer.to_dict() if self.per_layer else None
        if self.ddp is not None:  # single-device rows keep their schema unchanged
            d["ddp"] = self.ddp.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BenchRow":
        """The row ``to_dict`` wrote (e.g. read back from ``--format json``)."""
        own = _own_fields(cls, data)
        own["input_size"] = tuple(data["input_size"])
        own["notes"] = tuple(data.get("notes") or ())
        own["unstable_causes"] = tuple(data.get("unstable_causes") or ())
        own["per_layer"] = PerLayer.from_dict(data["per_layer"]) if data.get("per_layer") else None
        own["ddp"] = DdpStats.from_dict(data["ddp"]) if data.get("ddp") else None
        return cls(**own)


@dataclass(frozen=True)
class BenchResult(Shown):
    """A sweep: the environment, the ceilings and the rows measured (so far).

    Built once the sweep ends (the runner collects its rows and ceilings as it goes);
    ``rows`` given as a list is kept as a tuple.
    """

    env: dict[str, Any]
    settings: dict[str, Any]
    rows: tuple[BenchRow, ...] = ()
    ceilings: dict[str, MatmulCeiling] = field(default_factory=dict)  # dtype -> ceiling
    bandwidth: CopyBandwidth | None = None  # measured for --per-layer (the roofline)
    interrupted: bool = False  # Ctrl-C: rows holds what finished before it
    planned: int = 0  # rows the sweep meant to measure

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "settings": self.settings,
            "flop_basis": FLOP_BASIS,
            "ceilings": {k: c.to_dict() for k, c in self.ceilings.items()},
            "copy_bandwidth": self.bandwidth.to_dict() if self.bandwidth else None,
            "interrupted": self.interrupted,
            "planned_rows": self.planned,
            "rows": [r.to_dict() for r in self.rows],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BenchResult":
        """A sweep read back from the JSON ``to_dict`` wrote, to render it again: a
        ``DdpResult`` or ``ShardedResult`` when its env says it ran over ranks (JSON keeps
        no type; called on a subclass, that subclass)."""
        env = data.get("env") or {}
        if cls is BenchResult:
            cls = DdpResult if env.get("ddp") else ShardedResult if env.get("shard") else cls
        return cls(env=dict(data.get("env") or {}), settings=dict(data.get("settings") or {}),
                   rows=tuple(BenchRow.from_dict(r) for r in data.get("rows", ())),
                   ceilings={k: MatmulCeiling.from_dict(c)
                             for k, c in (data.get("ceilings") or {}).items()},
                   bandwidth=(CopyBandwidth.from_dict(data["copy_bandwidth"])
                              if data.get("copy_bandwidth") else None),
                   interrupted=bool(data.get("interrupted", False)),
                   planned=int(data.get("planned_rows", 0)))


@dataclass(frozen=True)
class DdpResult(BenchResult):
    """A data-parallel sweep (``cnnscope bench --ddp N``): every row carries its
    ``DdpStats``, ``env["ddp"]`` the launch (world size, backend, bucket size, threads).
    Its own type, so that its renderer (the DDP tables) is picked by type."""


@dataclass(frozen=True)
class ShardedResult(BenchResult):
    """A sweep whose rows were spread over ranks (``cnnscope bench --shard``): ordinary
    rows, ``env["shard"]`` saying where each rank's rows ran."""


def _own_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``data`` that are fields of the dataclass ``cls`` (derived keys such as
    ``iqr_ms`` or ``fwd_tflops`` are computed again, never read)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _tflops(flops: float, ms: float | None) -> float | None:
    if not ms or ms <= 0:
        return None
    return flops / (ms * 1e-3) / 1e12
