"""What a data-parallel run is: the launch options and the job every rank runs.

Its own module so that the launcher (``benchmark/ddp.py``) and the ranks (``benchmark/ddp_rank.py``)
both read these types without importing each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

# A collective that waits longer than this raises on every rank that waits (gloo and
# NCCL honour init_process_group's timeout); the launcher then stops the job.
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_PREDICT_WORLD = (8, 64)


@dataclass(frozen=True)
class DdpOptions:
    """How the distributed run is launched and what it predicts."""

    nproc: int | None = None  # --ddp N: launch N local ranks; None: join torchrun's job
    shard: bool = False  # spread the rows over the ranks instead of running DDP
    bucket_cap_mb: float | None = None  # None: DDP's default
    link_gbps: float | None = None  # None: the bandwidth measured in this job
    latency_us: float = 0.0
    predict_world: tuple[int, ...] = DEFAULT_PREDICT_WORLD
    port: int = 0  # rendezvous port of a local launch; 0: a free one
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class DdpJob:
    """What every rank runs: picklable (model specs, not built models)."""

    names: tuple[str, ...]
    kwargs: tuple[dict, ...]
    batches: tuple[int, ...]
    dtypes: tuple[str, ...]
    modes: tuple[str, ...]
    settings: Any  # runner.BenchSettings (device "cpu" or "cuda": each rank takes its own)
    options: DdpOptions = field(default_factory=DdpOptions)
    threads: int | None = None  # CPU: torch threads per rank (local launch)
    status_dir: str | None = None  # local launch: each rank marks here that it finished


def finished_mark(status_dir: str, rank: int) -> str:
    """The file rank ``rank`` writes when its work returned or raised (not on os._exit)."""
    return os.path.join(status_dir, f"rank{rank}.finished")
