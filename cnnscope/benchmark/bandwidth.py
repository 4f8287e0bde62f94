"""The copy bandwidth ceiling: how many bytes per second this device really moves.

The memory roof of the per-layer roofline (``bench --per-layer``). Measured as the median
rate of one large ``dst.copy_(src)``: it reads ``src`` and writes ``dst``, so it moves
2 x the tensor's bytes (the STREAM "copy" kernel's count). The tensors are far larger
than any cache (256 MiB each on a CPU, 1 GiB on a GPU), so the rate is DRAM's / HBM's.

Cached like the matmul ceiling (``cnnscope.benchmark.ceiling``, rules in
``cnnscope.benchmark.cache``): measured at most once per run, stored in ``copy_bandwidth.json``
only when the measurement was stable, keyed as the ceiling is; ``remeasure=True``
(``--remeasure-ceiling``) measures it again.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from cnnscope.benchmark import cache
from cnnscope.benchmark.ceiling import device_key
from cnnscope.benchmark.env import device_name
from cnnscope.benchmark.records import CopyBandwidth
from cnnscope.benchmark.stability import SPREAD_LIMIT, Watch, causes
from cnnscope.benchmark.stats import summarize
from cnnscope.benchmark.timing import timer_for

CACHE_FILE = "copy_bandwidth.json"
CUDA_BYTES = 1 << 30  # per tensor: far beyond any GPU's L2
CPU_BYTES = 256 << 20  # per tensor: far beyond any CPU's last-level cache
# Bounds of a cached rate: 1 MB/s to 100 TB/s (HBM3e is ~8 TB/s): outside is damage.
MIN_BYTES_PER_S = 1e6
MAX_BYTES_PER_S = 1e14

_RUN_CACHE: dict[str, CopyBandwidth] = {}


def cache_path() -> Path:
    return cache.cache_dir() / CACHE_FILE


def measure_copy(device: torch.device, nbytes: int | None = None, *, reps: int = 10,
                 budget_s: float = 2.0) -> tuple[float, int]:
    """Median bytes/s of ``dst.copy_(src)`` (2 x ``nbytes`` moved per copy), and ``nbytes``."""
    m = measure(device, nbytes, reps=reps, budget_s=budget_s)
    return m[0], m[1]


def measure(device: torch.device, nbytes: int | None = None, *, reps: int = 10,
            budget_s: float = 2.0) -> tuple[float, int, float, tuple[str, ...], float | None,
                                            float | None]:
    """(bytes/s, nbytes, spread, causes, load average, other CPU share) of the copy.

    One untimed copy first (page faults, allocation), then ``reps`` timed copies (more
    while the spread is over the limit, within the budget; at least 3); the median
    counts, as for the matmul ceiling.
    """
    device = torch.device(device)
    nbytes = int(nbytes or (CUDA_BYTES if device.type == "cuda" else CPU_BYTES))
    n = max(1, nbytes // 4)
    timer = timer_for(device)
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    watch = Watch().start()
    dst.copy_(src)
    timer.sync()
    times: list[float] = []
    start = time.perf_counter()
    while True:
        m0 = timer.mark()
        dst.copy_(src)
        m1 = timer.mark()
        timer.sync()
        times.append(timer.elapsed_ms(m0, m1))
        if len(times) >= 3 and time.perf_counter() - start > budget_s:
            break
        if len(times) >= reps and summarize(times).relative_iqr <= SPREAD_LIMIT:
            break
    seen = watch.stop()
    moved = 2 * n * 4
    del src, dst
    s = summarize(times)
    return (moved / (s.median * 1e-3), n * 4, round(s.relative_iqr, 4),
            causes(s.relative_iqr, seen), seen.load_average, seen.other_cpu)


def _cached_entry(entry: object, device: torch.device) -> CopyBandwidth | None:
    """The cached figure, or None when absent, damaged, unstable or from another set-up."""
    if not isinstance(entry, dict):
        return None
    rate = cache.number(entry.get("bytes_per_s"), MIN_BYTES_PER_S, MAX_BYTES_PER_S)
    nbytes = cache.number(entry.get("nbytes"), 1, 1 << 40, integer=True)
    how = cache.provenance(entry, SPREAD_LIMIT)
    if (rate is None or nbytes is None or how is None
            or entry.get("device_name") != device_name(device)
            or entry.get("torch_version") != torch.__version__):
        return None
    return CopyBandwidth(device_name=entry["device_name"], bytes_per_s=float(rate),
                         nbytes=int(nbytes), measured_at=how.measured_at,
                         torch_version=torch.__version__, cached=True, spread=how.spread,
                         stable=True, load_average=how.load_average)


def copy_bandwidth(device: torch.device | str, *, remeasure: bool = False,
                   path: Path | None = None, nbytes: int | None = None) -> CopyBandwidth:
    """The copy bandwidth of ``device``: from this run, else the cache file, else measured."""
    dev = torch.device(device)
    key = device_key(dev)
    if not remeasure and key in _RUN_CACHE:
        return _RUN_CACHE[key]
    file = path or cache_path()
    bw = None if remeasure else _cached_entry(cache.read_json(file).get(key), dev)
    if bw is not None:
        _RUN_CACHE[key] = bw
        return bw
    rate, size, spread, why, load, other = measure(dev, nbytes)
    bw = CopyBandwidth(device_name=device_name(dev), bytes_per_s=rate, nbytes=size,
                       measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       torch_version=torch.__version__, cached=False, spread=spread,
                       stable=not why, load_average=load, other_cpu=other, causes=why,
                       threads=torch.get_num_threads() if dev.type == "cpu" else None)
    _RUN_CACHE[key] = bw
    if bw.stable:
        data = cache.read_json(file)  # re-read: another process may have written meanwhile
        stored = bw.to_dict()
        for k in ("cached", "causes"):
            stored.pop(k)
        data[key] = stored
        cache.write_json(file, data)
    return bw


def clear_run_cache() -> None:
    """Forget the bandwidths measured in this process (tests)."""
    _RUN_CACHE.clear()
