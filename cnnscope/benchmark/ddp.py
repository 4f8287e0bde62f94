"""Data-parallel benchmarking on ``torch.distributed``: DDP training steps and sharded sweeps.

Everything distributed is PyTorch's own: the elastic launcher behind ``torchrun``
(``torch.distributed.launcher.api.elastic_launch``) starts the local ranks, the c10d
rendezvous and ``init_process_group`` ("env://") join them, ``DistributedDataParallel``
reduces the gradients (gloo on the CPU, NCCL on CUDA), and ``gather_object`` brings every
rank's figures to rank 0, which writes the report.

Two ways in:

* ``cnnscope bench MODEL --ddp N``: this process launches N local ranks (the elastic
  agent, ``max_restarts=0``: a rank that dies stops all the others and the command
  fails with one line naming the rank; nothing hangs).
* ``torchrun --nnodes ... --nproc-per-node ... -m cnnscope bench MODEL``: every process
  sees torchrun's environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` ...) and joins
  that job instead; rank 0 writes the report, the other ranks print nothing.

One DDP row, per (model, per-rank batch, dtype):

1. Rank 0 times the plain model (no DDP, one process, the same per-rank batch, the same
   torch threads as each rank) with ``runner.bench_row``: the single-process step.
2. Every rank builds the model (same seed), wraps it in DDP and warms up. Warm-up
   stops when *every* rank's timings have settled (one all-reduce per warm-up step), and
   the number of timed steps is agreed the same way: collectives must match across
   ranks, so no rank may decide alone.
3. Timed steps alternate a normal DDP step and the same step under ``no_sync()`` (DDP's
   documented switch that skips the gradient all-reduce). The difference of their
   medians is the communication DDP could not hide behind the backward pass.
4. A lone all-reduce of the gradient bytes (one float32 tensor) is timed too: its bus
   bandwidth calibrates the ring all-reduce prediction when ``--link-gbps`` is not given.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import sys
import tempfile
import threading
import uuid
from dataclasses import replace
from typing import Any, Sequence

import torch

import cnnscope.patches as patches
import cnnscope.validate as validate
from cnnscope.benchmark.ddp_job import DdpJob, DdpOptions, finished_mark
from cnnscope.benchmark.ddp_rank import run_rank
from cnnscope.benchmark.launcher_env import (
    check_capacity,
    check_job_env,
    launched_by_torchrun,
    usable_cores,
)
from cnnscope.benchmark.records import BenchResult
from cnnscope.errors import CnnscopeError, DistributedError, InvalidOptionError, Stopped, first_line


# ----------------------------------------------------------------------------- launching


def in_torchrun(environ: dict[str, str] | None = None) -> bool:
    """Whether torchrun's agent started this process as a rank of its job (stale
    ``RANK``/``WORLD_SIZE``/``MASTER_*`` variables alone are not a job: ``launcher_env``)."""
    return launched_by_torchrun(environ)


def check_options(options: DdpOptions, modes: Sequence[str], settings: Any,
                  device: torch.device) -> None:
    """Every --ddp/--shard option checked before a process starts (one-line errors)."""
    if options.nproc is not None and options.nproc < 1:
        raise InvalidOptionError(f"--ddp {options.nproc} is not positive", "use --ddp 2 or more")
    if not options.shard:
        if any(m != "train" for m in modes):
            raise InvalidOptionError("--ddp times training steps (DDP reduces gradients)",
                                     "use --mode train, or --shard to spread an inference sweep")
        for flag, on in (("--per-layer", settings.per_layer), ("--compile", settings.compile),
                         ("--cuda-graphs", settings.cuda_graphs)):
            if on:
                raise InvalidOptionError(f"{flag} is not supported with --ddp", f"drop {flag}")
    validate.options(bucket_mb=options.bucket_cap_mb, link_gbps=options.link_gbps,
                     link_latency_us=options.latency_us)
    if any(p < 1 for p in options.predict_world):
        raise InvalidOptionError("--predict-world sizes must be positive", "e.g. --predict-world 8,64")
    if not 0 <= options.port <= 65535:
        raise InvalidOptionError(f"--ddp-port {options.port} is not a port", "use 1-65535, or 0 for a free one")
    if device.type not in ("cpu", "cuda"):
        raise InvalidOptionError(f"--ddp runs on cpu or cuda, not {device.type}", "use --device cpu or cuda")
    if options.nproc is not None and device.type == "cuda":
        if str(settings.device) not in ("cuda",):
            raise InvalidOptionError("--ddp puts rank i on cuda:i", "give --device cuda without an index")
        visible = torch.cuda.device_count()
        if options.nproc > visible:
            raise InvalidOptionError(f"--ddp {options.nproc} needs {options.nproc} GPUs, {visible} visible",
                                     f"use --ddp {visible} or fewer (one GPU per rank)")


def parse_world_sizes(text: str) -> tuple[int, ...]:
    """"8,64" -> (8, 64)."""
    out = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(int(item))
        except ValueError:
            raise InvalidOptionError(f"world size {item!r} is not an integer", "e.g. --predict-world 8,64") from None
    return tuple(dict.fromkeys(out))


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``port`` cannot be bound on ``host`` (another process listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def run(job: DdpJob, trace: Any, resolve: Any) -> BenchResult | None:
    """Launch ``job.options.nproc`` local ranks, or join the torchrun job this process is
    part of. Returns rank 0's merged result; None on every other rank of a joined job.
    ``trace`` gives a row's meta-device report and ``resolve`` turns ``job.names`` and
    ``job.kwargs`` into buildable sources (``cnnscope.api.run_ddp`` passes ``analyze`` and
    ``resolve_all``). Both are module-level functions, so the spawned ranks receive them by
    name and build their models in their own process: a built model (or a source holding
    a user's factory) need not be picklable, and timing never resolves a name itself."""
    if job.options.nproc is None:
        if not in_torchrun():
            raise InvalidOptionError("--shard needs ranks", "add --ddp N, or run under torchrun")
        check_job_env()
        return run_rank(job, trace, resolve)
    if in_torchrun():
        _, world = check_job_env()
        if job.options.nproc != world:
            raise InvalidOptionError(f"--ddp {job.options.nproc} inside a torchrun job of {world} ranks",
                                     "drop --ddp under torchrun: the job's ranks are used")
        return run_rank(job, trace, resolve)
    return launch(job, trace, resolve)


def launch(job: DdpJob, trace: Any, resolve: Any) -> BenchResult:
    """Start ``nproc`` local ranks with torch.distributed's elastic launcher and return
    rank 0's result. Ranks' output goes to log files; a failure is one DistributedError."""
    import logging
    import shutil

    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    opts = job.options
    nproc = int(opts.nproc or 1)
    if opts.port and port_in_use(opts.port):
        raise InvalidOptionError(f"port {opts.port} is in use", "pick another --ddp-port, or 0 for a free one")
    if job.settings.device.startswith("cpu"):
        check_capacity(nproc, _model_bytes(job, resolve))
        if job.threads is None:  # the cores this process may use, shared out (bench's policy)
            job = replace(job, threads=max(1, usable_cores() // nproc))
    # The agent and torch.multiprocessing log every start and stop; the command prints
    # one line instead.
    for name in ("torch.distributed.elastic", "torch.distributed.launcher",
                 "torch.multiprocessing", "torch.distributed"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    log_dir = tempfile.mkdtemp(prefix=LOG_PREFIX)
    job = replace(job, status_dir=log_dir)
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"cnnscope-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d", rdzv_endpoint=f"127.0.0.1:{opts.port}",
        rdzv_configs={"join_timeout": int(opts.timeout_s)},
        max_restarts=0, monitor_interval=0.2, start_method="spawn",
        logs_specs=DefaultLogsSpecs(log_dir=log_dir, redirects=Std.ALL, tee=Std.NONE),
    )
    keep = True  # the rank logs of a failed run stay, and the error says where
    try:
        with _stderr_to(os.path.join(log_dir, "launcher.log")), _signal_handlers_kept():
            results = elastic_launch(config, run_rank)(job, trace, resolve)
        keep = False
    except ChildFailedError as exc:
        raise DistributedError(_failure_line(exc, log_dir, nproc),
                               f"all ranks stopped; rank logs in {log_dir}, removed by the next "
                               "successful run") from None
    except SignalException as exc:  # the launcher's handlers caught it; its ranks are stopped
        keep = False
        raise Stopped(int(exc.sigval)) from None
    except Exception as exc:  # noqa: BLE001 - a rendezvous or launch failure, not a bug of ours
        if isinstance(exc, CnnscopeError):
            raise
        raise DistributedError(f"the ranks could not start: {first_line(exc)}",
                               f"rank logs in {log_dir}") from None
    finally:
        if keep:
            _mark_failed(log_dir)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    _remove_failed_logs(os.path.dirname(log_dir))
    result = results.get(0)
    if result is None:
        raise DistributedError("rank 0 returned no result", f"rank logs in {log_dir}")
    return result


def _model_bytes(job: DdpJob, resolve: Any) -> int:
    """One rank's weights, gradients and two optimizer states (fp32) of the largest model,
    counted on the meta device (nothing allocated)."""
    largest = 0
    for source in resolve(job.names, job.kwargs):
        try:
            model = source.build("meta")
        except Exception:  # noqa: BLE001 - a model that fails to build fails its own rows
            continue
        largest = max(largest, sum(p.numel() for p in model.parameters()))
    return 4 * 4 * largest


@contextlib.contextmanager
def _signal_handlers_kept():
    """The launcher installs handlers raising ``SignalException`` for SIGINT, SIGTERM,
    SIGHUP and SIGQUIT and never removes them: a Ctrl-C while the report is written
    afterwards would be a traceback. The handlers in place before are put back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with _LAUNCHER_SIGNALS:
        yield


def _save_handlers() -> dict:
    import signal

    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
    return {sig: signal.getsignal(sig) for sig in
            (getattr(signal, n) for n in names if hasattr(signal, n))}


def _put_back_handlers(saved: dict) -> None:
    import signal

    for sig, handler in saved.items():
        if handler is not None:
            signal.signal(sig, handler)


_LAUNCHER_SIGNALS = patches.scoped("launcher-signals", install=_save_handlers,
                                   remove=_put_back_handlers, observe=_save_handlers)


def _saved_stderr() -> int:
    sys.stderr.flush()
    return os.dup(2)


def _stderr_into(path: str) -> None:
    # A log file that cannot be made (a planted name) leaves fd 2 where it was.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        return
    os.dup2(fd, 2)
    os.close(fd)


def _stderr_back(saved: int) -> None:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


# fd 2 into the launcher's log while it runs (``with _stderr_to(path):``): its warning
# lines and what a rank writes before its own redirection (a KeyboardInterrupt traceback
# while it starts) stay in the rank-log folder; cnnscope's one line follows after.
_stderr_to = patches.setting("launcher-log", _saved_stderr, _stderr_into, _stderr_back)


LOG_PREFIX = "cnnscope-ddp-"
FAILED_MARK = "FAILED"  # in a kept rank-log folder: a later successful run removes it


def _mark_failed(log_dir: str) -> None:
    try:
        with open(os.path.join(log_dir, FAILED_MARK), "x", encoding="ascii") as fh:
            fh.write("rank logs of a failed cnnscope bench --ddp run\n")
    except OSError:
        pass


def _remove_failed_logs(parent: str) -> None:
    """Remove the rank-log folders failed runs left in ``parent``: only real folders
    (no symlink), this user's, named by cnnscope and marked failed by it."""
    import shutil

    try:
        names = [n for n in os.listdir(parent) if n.startswith(LOG_PREFIX)]
    except OSError:
        return
    for name in names:
        path = os.path.join(parent, name)
        try:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() \
                    or not os.path.isfile(os.path.join(path, FAILED_MARK)):
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)


# Messages of a rank that failed because another one died first (the collective lost
# its peer): the other rank's failure is the one to report.
_PEER_LOST = ("connection closed", "connection reset", "closed by peer", "broken pipe",
              "remote process", "socket", "timed out", "timeout",
              # gloo's TCP transport: its errors name the file, sometimes with no more text
              "gloo/transport", "pair.cc")


def _failure_line(exc: Any, log_dir: str | None = None, nproc: int = 0) -> str:
    """"rank 1 exited with code 7" or "rank 1 failed: RuntimeError: ..." for the rank that
    failed first: a rank's own error before one that only lost its peer, then the earliest.

    The launcher's ``failures`` may hold only the rank it noticed first (often the one that
    lost its peer, the other one being stopped meanwhile); each rank's own error file in the
    log folder is read too, so the rank that really failed is named.
    """
    failures = getattr(exc, "failures", {}) or {}
    if not failures:
        return f"a rank failed: {first_line(exc)}"

    def message(f: Any) -> str:
        text = f.message.get("message", "") if isinstance(f.message, dict) else f.message
        text = str(text or "").strip()
        return "" if text.startswith("To enable traceback") else text

    # rank -> (message, when, exit code)
    found: dict[int, tuple[str, int, Any]] = {}
    for rank, f in failures.items():
        when = int(f.timestamp or 0) * 10**9
        try:
            when = os.stat(f.error_file).st_mtime_ns
        except (OSError, TypeError, ValueError):
            pass
        found[rank] = (message(f), when, f.exitcode)
    for rank, text, when in _logged_errors(log_dir):
        if rank not in found or not found[rank][0]:
            found[rank] = (text, when, found.get(rank, ("", 0, None))[2])

    # A rank that is neither failed nor finished, while the first failure is a lost
    # connection (not a timeout: a rank that hangs is killed by the agent later, unmarked
    # too), ended its process before its work returned or raised: os._exit in model code,
    # or a kill. Its peers only lost it. Its exit code is not known here: the launcher
    # reports only the first failed process it polls, and a rank that ends with code 0 is
    # no failure to it, so the line names no code (one that ended with 7 within the same
    # poll as its peer would be reported the same way).
    left = [r for r in range(nproc) if r not in found and log_dir
            and not os.path.exists(finished_mark(log_dir, r))]

    def order(rank: int) -> tuple[bool, bool, int, int]:
        text, when, _ = found[rank]
        return (any(k in text.lower() for k in _PEER_LOST), not text, when, rank)

    rank = min(found, key=order)
    if left and _connection_lost(found[rank][0]):
        return (f"rank {left[0]} left first: its process ended without an error before its "
                "work returned (os._exit in model code, or killed?); the others lost their peer")
    text, _, code = found[rank]
    if text:
        return f"rank {rank} failed: {text.splitlines()[0]}"
    return f"rank {rank} exited with code {code}"


def _connection_lost(text: str) -> bool:
    """A peer's process went away (not a peer that hangs: that is a timeout)."""
    low = text.lower()
    return any(k in low for k in _PEER_LOST) and "timed out" not in low and "timeout" not in low


def _logged_errors(log_dir: str | None) -> list[tuple[int, str, int]]:
    """(rank, message, mtime) of every rank's error.json under the launcher's log folder."""
    import glob
    import json

    out = []
    if not log_dir:
        return out
    for path in glob.glob(os.path.join(log_dir, "*", "attempt_*", "*", "error.json")):
        try:
            rank = int(os.path.basename(os.path.dirname(path)))
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            message = data.get("message", "")
            text = message.get("message", "") if isinstance(message, dict) else message
            out.append((rank, str(text or "").strip(), os.stat(path).st_mtime_ns))
        except (OSError, ValueError, AttributeError):
            continue
    return out



__all__ = ["DdpJob", "DdpOptions", "check_options", "in_torchrun", "launch", "parse_world_sizes",
           "port_in_use", "run", "run_rank"]
