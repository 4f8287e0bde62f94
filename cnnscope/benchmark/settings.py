"""What a sweep holds the same for every row: ``BenchSettings``, checked in one place.

Its own module so that the runner and the workload it runs both read it without
importing each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

import cnnscope.validate as validate
from cnnscope.benchmark.stats import SettleRule
from cnnscope.errors import DeviceUnavailableError, InvalidOptionError
from cnnscope.trace.devices import resolve_device


@dataclass(frozen=True)
class BenchSettings:
    """Everything about a sweep that is the same for every row."""

    device: str = "cpu"
    warmup: int = 5  # minimum warm-up iterations
    max_warmup: int = 50  # warm-up gives up settling here
    iters: int | None = None  # exactly this many timed iterations; None: --min-time
    min_time: float = 2.0  # seconds of timed iterations when iters is None
    # Adaptive sampling (with min_time): past min_time, go on while the samples' spread is
    # over SPREAD_LIMIT, up to this many seconds in all (None: 3 x min_time).
    max_time: float | None = None
    # torch intra-op threads for the sweep; None leaves torch's setting alone (the CLI
    # passes stability.default_threads(), the cores of the affinity mask; DDP ranks set
    # their own share).
    threads: int | None = None
    min_samples: int = 5  # timed iterations at least, with min_time
    seed: int = 0
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    per_layer: bool = False
    cudnn_benchmark: bool = True
    input_size: tuple[int, ...] | None = None
    ceiling: bool = True
    remeasure_ceiling: bool = False

    def check(self) -> torch.device:
        """The device, after checking every option; a one-line error for a bad one."""
        if self.device in (None, "", "meta"):
            raise InvalidOptionError("bench needs a real device", "use --device cpu or --device cuda")
        try:
            dev = resolve_device(self.device)
        except DeviceUnavailableError as err:
            # The tracer's hint points at the meta device, which cannot be timed.
            raise DeviceUnavailableError(err.message, "use --device cpu") from None
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        if self.iters is not None and self.iters < 1:
            raise InvalidOptionError(f"--iters {self.iters} is not positive", "use 1 or more")
        validate.option("--min-time", self.min_time)
        if self.max_time is not None and not self.max_time >= self.min_time:
            raise InvalidOptionError(f"max_time {self.max_time} is below min_time {self.min_time}",
                                     "give a max_time of at least min_time")
        if self.threads is not None and not 1 <= self.threads <= 4096:
            raise InvalidOptionError(f"--threads {self.threads} is not between 1 and 4096",
                                     "leave it out for the default: the cores this process may use")
        if self.warmup < 0 or self.max_warmup < 0:
            raise InvalidOptionError("warm-up counts cannot be negative", "use --warmup 0 or more")
        if self.cuda_graphs and dev.type != "cuda":
            raise InvalidOptionError("--cuda-graphs needs a CUDA device", "drop it, or use --device cuda")
        if self.per_layer and (self.compile or self.cuda_graphs):
            raise InvalidOptionError("--per-layer times eager layers",
                                     "run it without --compile and --cuda-graphs")
        return dev

    @property
    def settle_rule(self) -> SettleRule:
        return SettleRule(min_iters=self.warmup, max_iters=max(self.max_warmup, self.warmup))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size) if self.input_size else None
        return d
