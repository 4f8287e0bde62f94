"""The copy bandwidth ceiling: how many bytes per second this device really moves.

The memory roof of the per-layer roofline (``bench --per-layer``). Measured as the best
rate of one large ``dst.copy_(src)``: it reads ``src`` and writes ``dst``, so it moves
2 x the tensor's bytes (the STREAM "copy" kernel's count). The tensors are far larger
than any cache (256 MiB each on a CPU, 1 GiB on a GPU), so the rate is DRAM's / HBM's.

Cached like the matmul ceiling (``cnnscope.bench.ceiling``): measured at most once per run
and stored in ``copy_bandwidth.json`` in the same cache folder, keyed by device name,
torch and CUDA versions; ``remeasure=True`` (``--remeasure-ceiling``) measures it again.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from cnnscope.bench.ceiling import (
    _read_cache,
    _write_cache,
    cache_dir,
    cached_measurement,
    device_key,
)
from cnnscope.bench.env import device_name
from cnnscope.bench.records import CopyBandwidth
from cnnscope.bench.timing import timer_for

CACHE_FILE = "copy_bandwidth.json"
CUDA_BYTES = 1 << 30  # per tensor: far beyond any GPU's L2
CPU_BYTES = 256 << 20  # per tensor: far beyond any CPU's last-level cache

_RUN_CACHE: dict[str, CopyBandwidth] = {}


def cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def measure_copy(device: torch.device, nbytes: int | None = None, *, reps: int = 10,
                 budget_s: float = 2.0) -> tuple[float, int]:
    """Best bytes/s of ``dst.copy_(src)`` (2 x ``nbytes`` moved per copy), and ``nbytes``.

    One untimed copy first (page faults, allocation), then up to ``reps`` timed copies
    within the budget (at least 3); the fastest counts, as for the matmul ceiling:
    interference only ever slows a copy down.
    """
    device = torch.device(device)
    nbytes = int(nbytes or (CUDA_BYTES if device.type == "cuda" else CPU_BYTES))
    n = max(1, nbytes // 4)
    timer = timer_for(device)
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    timer.sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < reps:
        m0 = timer.mark()
        dst.copy_(src)
        m1 = timer.mark()
        timer.sync()
        times.append(timer.elapsed_ms(m0, m1))
        if len(times) >= 3 and time.perf_counter() - start > budget_s:
            break
    moved = 2 * n * 4
    del src, dst
    return moved / (min(times) * 1e-3), n * 4


def _cached_entry(entry) -> CopyBandwidth | None:
    """The cached figure, or None when absent or damaged (``cached_measurement``)."""
    found = cached_measurement(entry, "bytes_per_s", "nbytes")
    if found is None:
        return None
    rate, nbytes, name, when, version = found
    return CopyBandwidth(device_name=name, bytes_per_s=rate, nbytes=nbytes, measured_at=when,
                         torch_version=version, cached=True)


def copy_bandwidth(device: torch.device | str, *, remeasure: bool = False,
                   path: Path | None = None, nbytes: int | None = None) -> CopyBandwidth:
    """The copy bandwidth of ``device``: from this run, else the cache file, else measured."""
    dev = torch.device(device)
    key = device_key(dev)
    if not remeasure and key in _RUN_CACHE:
        return _RUN_CACHE[key]
    file = path or cache_path()
    bw = None if remeasure else _cached_entry(_read_cache(file).get(key))
    if bw is not None:
        _RUN_CACHE[key] = bw
        return bw
    rate, size = measure_copy(dev, nbytes)
    bw = CopyBandwidth(device_name=device_name(dev), bytes_per_s=rate, nbytes=size,
                       measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       torch_version=torch.__version__, cached=False)
    _RUN_CACHE[key] = bw
    data = _read_cache(file)  # re-read: another process may have written meanwhile
    stored = bw.to_dict()
    stored.pop("cached")
    data[key] = stored
    _write_cache(file, data)
    return bw


def clear_run_cache() -> None:
    """Forget the bandwidths measured in this process (tests)."""
    _RUN_CACHE.clear()
