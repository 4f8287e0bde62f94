"""When ``bench`` joins a distributed job, and how many local ranks the machine can hold.

``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` are often left in the
environment (a Kubernetes PyTorchJob, a SLURM wrapper, a shell that once ran a job);
taken as an order to join, they made a plain ``cnnscope bench`` block in a rendezvous
that never completes. So a job is joined only when a launcher really started this
process: torchrun's elastic agent sets ``TORCHELASTIC_RUN_ID`` and ``LOCAL_WORLD_SIZE``
for every worker it starts, and nothing else does. ``--ddp N`` launches its own N ranks
whatever the environment holds. The joined job's variables are checked (integers, rank
below world size, a port) before any rendezvous, and every rendezvous has a timeout.
"""

from __future__ import annotations

import os
from typing import Mapping

from cnnscope.errors import InvalidOptionError
from cnnscope.trace.sizes import cpu_available_bytes

JOB_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
LAUNCHER_VARS = ("TORCHELASTIC_RUN_ID", "LOCAL_WORLD_SIZE")  # set only by torchrun's agent

# One local rank before the model's weights, gradients and optimizer state: an interpreter
# with torch, torch.distributed and cnnscope that built lenet5 and ran one CPU step had a
# resident size of 268 MiB (torch 2.x, Linux, 2026-12-07); rounded up for gloo's buffers.
RANK_BASE_BYTES = 512 * 2**20


def launched_by_torchrun(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a launcher (torchrun's elastic agent) started this process as a rank."""
    env = os.environ if environ is None else environ
    return all(env.get(k) for k in JOB_VARS + LAUNCHER_VARS)


def check_job_env(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(rank, world size) of the joined job, its variables checked; one line otherwise."""
    env = os.environ if environ is None else environ
    values = {}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_PORT"):
        text = env.get(key, "0" if key == "LOCAL_RANK" else "")
        try:
            values[key] = int(text)
        except ValueError:
            raise InvalidOptionError(f"the launcher's {key}={text[:20]!r} is not an integer",
                                     "start the job with torchrun") from None
    rank, world = values["RANK"], values["WORLD_SIZE"]
    if not 1 <= world <= 1 << 20 or not 0 <= rank < world:
        raise InvalidOptionError(f"the launcher's RANK={rank} WORLD_SIZE={world}: a rank must "
                                 "be below the world size", "start the job with torchrun")
    local, local_world = values["LOCAL_RANK"], values["LOCAL_WORLD_SIZE"]
    if not 1 <= local_world <= world or not 0 <= local < local_world:
        raise InvalidOptionError(f"the launcher's LOCAL_RANK={local} LOCAL_WORLD_SIZE="
                                 f"{local_world} do not fit WORLD_SIZE={world}",
                                 "start the job with torchrun")
    if not 1 <= values["MASTER_PORT"] <= 65535:
        raise InvalidOptionError(f"the launcher's MASTER_PORT={values['MASTER_PORT']} is not a "
                                 "port", "start the job with torchrun")
    return rank, world


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes this machine can allocate without swapping (MemAvailable), else None."""
    return cpu_available_bytes()


# Ranks that may share one core: beyond it a run measures the scheduler, not DDP.
RANKS_PER_CORE = 4


def check_capacity(nproc: int, model_bytes: int, *, cores: int | None = None,
                   available: int | None = None) -> None:
    """Refuse ``--ddp nproc`` on the CPU beyond ``RANKS_PER_CORE`` ranks a core, or beyond
    the memory ``nproc`` interpreters with the model need (``model_bytes``: weights,
    gradients and optimizer state of one rank). ``cores``/``available`` default to this
    machine's. More ranks than cores run (they share the cores, and the table says so):
    a 1-core CI runner can still check a 2-rank job; a thousand interpreters cannot."""
    cores = usable_cores() if cores is None else cores
    if nproc > RANKS_PER_CORE * cores:
        raise InvalidOptionError(f"--ddp {nproc} would put more than {RANKS_PER_CORE} ranks on "
                                 f"each of this machine's {cores} usable core(s)",
                                 f"use --ddp {RANKS_PER_CORE * cores} or fewer")
    available = available_memory() if available is None else available
    need = nproc * (RANK_BASE_BYTES + model_bytes)
    if available is not None and need > available:
        fits = max(0, available // (RANK_BASE_BYTES + model_bytes))
        raise InvalidOptionError(
            f"--ddp {nproc} needs about {need / 2**30:.1f} GiB ({nproc} ranks of "
            f"{(RANK_BASE_BYTES + model_bytes) / 2**30:.2f} GiB); {available / 2**30:.1f} GiB "
            "is available", f"use --ddp {fits} or fewer" if fits else "free some memory")
