"""The dense matmul ceiling: what this device really does in a dtype, measured, not quoted.

A model's achieved TFLOP/s means little against a datasheet peak (boost clocks, sparsity
factors, the dtype's own peak). cnnscope measures the sustained rate of one large square
``torch.mm`` in the row's dtype on the row's device and reports the model's rate as a
fraction of it: the same basis (2 x multiply-accumulates per second), the same library
stack, the same clocks, the same estimator (the median) as the rows.

Each (device, dtype) is measured at most once per run and cached (``cnnscope.benchmark.cache``:
the folder's rules and the range checks) under a key naming the device (its CPU or GPU
model), the torch build and, on a CPU, the thread count: a new torch, another CPU or
another ``--threads`` is a different key, so it is measured again. Only a *stable*
measurement is cached (its spread under ``SPREAD_LIMIT``, no other process on the cores,
no steal), with its spread and the load it saw; one taken under load serves its own run
only. ``remeasure=True`` (``--remeasure-ceiling``) measures again.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import torch

from cnnscope.benchmark import cache
from cnnscope.benchmark.env import device_name
from cnnscope.benchmark.precision import fp32_math, tensor_dtype
from cnnscope.benchmark.records import MatmulCeiling
from cnnscope.benchmark.stability import SPREAD_LIMIT, Watch, causes
from cnnscope.benchmark.stats import summarize
from cnnscope.benchmark.timing import timer_for

CACHE_FILE = "matmul_ceiling.json"
# N x N sizes tried. On a GPU, 8192 fills any current part; 4096 is there because some
# parts peak below it. On a CPU, larger than 1024 only costs time.
CUDA_SIZES = (4096, 8192)
CPU_SIZES = (512, 1024)
# As triton's do_bench: ~100 ms of warm-up (clocks up, kernels chosen, caches warm), then
# samples for at least ~100 ms, so that the rate is a sustained one, not a cold burst.
WARMUP_S = 0.1
SAMPLE_S = 0.1
MIN_SAMPLES = 5
# A generous physical bound per device, far above any part sold today (an H100 does
# ~1000 dense bf16 TFLOP/s; a CPU core with AMX ~2): a cached rate above it is damage.
CUDA_TFLOPS_BOUND = 1e4
CPU_TFLOPS_BOUND_PER_CORE = 10.0
MIN_TFLOPS = 1e-6  # 1 MFLOP/s: below any device that can run a model

_RUN_CACHE: dict[tuple[str, str], MatmulCeiling] = {}  # measured in this process

cache_dir = cache.cache_dir  # where the cache files live (kept here for callers)


def cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def device_key(device: torch.device) -> str:
    """Cache key: the device (CPU or GPU model), the torch build, and a CPU's threads."""
    dev = torch.device(device)
    build = (torch.version.git_version or "")[:12]
    key = f"{device_name(dev)} | torch {torch.__version__} {build}".rstrip()
    if dev.type == "cuda":
        return f"{key} | cuda {torch.version.cuda}"
    return f"{key} | {torch.get_num_threads()} threads"


def tflops_bound(device: torch.device) -> float:
    if torch.device(device).type == "cuda":
        return CUDA_TFLOPS_BOUND
    return CPU_TFLOPS_BOUND_PER_CORE * (os.cpu_count() or 1)


@dataclass(frozen=True)
class Measured:
    """One ceiling measurement: the median rate, its size, spread and what else ran."""

    tflops: float
    n: int
    spread: float
    causes: tuple[str, ...]
    load_average: float | None
    other_cpu: float | None

    @property
    def stable(self) -> bool:
        return not self.causes


def measure(device: torch.device, dtype: str, sizes: Sequence[int] | None = None, *,
            budget_s: float = 2.0) -> Measured:
    """The median TFLOP/s of ``torch.mm`` over ``sizes`` (ascending): the best size's.

    Per size: warm-up for ``WARMUP_S`` (at least one call), then one synchronised call
    per sample for at least ``SAMPLE_S`` and ``MIN_SAMPLES``, longer (within the size's
    share of ``budget_s``) while the samples' spread is over ``SPREAD_LIMIT``. The median,
    not the minimum: the rows are medians of sustained work, and a lone fastest call is a
    burst no model sustains. A larger size whose one call would exceed the budget is
    skipped (a slow dtype on a CPU would otherwise take minutes).
    """
    device = torch.device(device)
    sizes = tuple(sizes or (CUDA_SIZES if device.type == "cuda" else CPU_SIZES))
    timer = timer_for(device)
    best: tuple[float, int, float] = (0.0, sizes[0], 0.0)  # rate, n, spread
    per_size = budget_s / len(sizes)
    # Generated on the device (a CPU-side 8192^2 randn would take longer than the timing),
    # with its own generator so the global RNG the rows seed is left alone.
    gen = torch.Generator(device=device).manual_seed(0)
    watch = Watch().start()
    with fp32_math(device, dtype):
        for n in sizes:
            a = torch.randn(n, n, generator=gen, device=device).to(tensor_dtype(dtype))
            b = torch.randn(n, n, generator=gen, device=device).to(tensor_dtype(dtype))
            out = torch.empty(n, n, device=device, dtype=tensor_dtype(dtype))
            start = time.perf_counter()
            while True:  # warm-up
                torch.mm(a, b, out=out)
                timer.sync()
                if time.perf_counter() - start >= min(WARMUP_S, per_size / 4):
                    break
            times: list[float] = []
            start = time.perf_counter()
            while True:
                m0 = timer.mark()
                torch.mm(a, b, out=out)
                m1 = timer.mark()
                timer.sync()  # one product per sample: the budget check needs real time
                times.append(timer.elapsed_ms(m0, m1))
                spent = time.perf_counter() - start
                if len(times) >= 3 and spent > per_size:
                    break
                if len(times) >= MIN_SAMPLES and spent >= SAMPLE_S \
                        and summarize(times).relative_iqr <= SPREAD_LIMIT:
                    break
            s = summarize(times)
            rate = 2.0 * n ** 3 / (s.median * 1e-3) / 1e12
            if rate > best[0]:
                best = (rate, n, s.relative_iqr)
            del a, b, out
            following = [m for m in sizes if m > n]
            if following and s.median * 1e-3 * (following[0] / n) ** 3 > per_size:
                break  # the next size would blow the budget on its own (a slow dtype on a CPU)
    seen = watch.stop()
    return Measured(tflops=best[0], n=best[1], spread=round(best[2], 4),
                    causes=causes(best[2], seen), load_average=seen.load_average,
                    other_cpu=seen.other_cpu)


def measure_matmul(device: torch.device, dtype: str, sizes: Sequence[int] | None = None, *,
                   budget_s: float = 2.0) -> tuple[float, int]:
    """(median TFLOP/s, N) of ``measure``."""
    m = measure(device, dtype, sizes, budget_s=budget_s)
    return m.tflops, m.n


def cached_entry(entry: object, device: torch.device, dtype: str) -> MatmulCeiling | None:
    """The cached ceiling, or None when absent, damaged, unstable or from another set-up.

    Every field is checked (``cache.number``, ``cache.text``): a cache is data anything
    may have written, and a number outside what the device can physically do is damage.
    """
    if not isinstance(entry, dict):
        return None
    tflops = cache.number(entry.get("tflops"), MIN_TFLOPS, tflops_bound(device))
    n = cache.number(entry.get("n"), 1, 1 << 16, integer=True)
    how = cache.provenance(entry, SPREAD_LIMIT)
    if (tflops is None or n is None or how is None or entry.get("dtype") != dtype
            or entry.get("device_name") != device_name(device)
            or entry.get("torch_version") != torch.__version__):
        return None
    return MatmulCeiling(device_name=entry["device_name"], dtype=dtype, tflops=float(tflops),
                         n=int(n), measured_at=how.measured_at, torch_version=torch.__version__,
                         cached=True, spread=how.spread, stable=True,
                         load_average=how.load_average,
                         threads=torch.get_num_threads() if torch.device(device).type == "cpu"
                         else None)


def matmul_ceiling(device: torch.device | str, dtype: str, *, remeasure: bool = False,
                   path: Path | None = None, sizes: Sequence[int] | None = None) -> MatmulCeiling:
    """The ceiling for (device, dtype): from this run, else the cache file, else measured
    now (and cached when the measurement was stable)."""
    dev = torch.device(device)
    key = device_key(dev)
    if not remeasure and (key, dtype) in _RUN_CACHE:
        return _RUN_CACHE[(key, dtype)]
    file = path or cache_path()
    if not remeasure:
        per_device = cache.read_json(file).get(key)
        ceiling = cached_entry(per_device.get(dtype) if isinstance(per_device, dict) else None,
                               dev, dtype)
        if ceiling is not None:
            _RUN_CACHE[(key, dtype)] = ceiling
            return ceiling
    m = measure(dev, dtype, sizes)
    ceiling = MatmulCeiling(device_name=device_name(dev), dtype=dtype, tflops=m.tflops, n=m.n,
                            measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                            torch_version=torch.__version__, cached=False, spread=m.spread,
                            stable=m.stable, load_average=m.load_average,
                            other_cpu=m.other_cpu, causes=m.causes,
                            threads=torch.get_num_threads() if dev.type == "cpu" else None)
    _RUN_CACHE[(key, dtype)] = ceiling
    if ceiling.stable:  # a measurement taken under load serves this run only
        data = cache.read_json(file)  # re-read: another process may have written meanwhile
        entry = ceiling.to_dict()
        for k in ("cached", "causes"):
            entry.pop(k)
        per_device = data.get(key)
        data[key] = {**(per_device if isinstance(per_device, dict) else {}), dtype: entry}
        cache.write_json(file, data)
    return ceiling


def keep_for_this_run(device: torch.device, dtype: str, ceiling: MatmulCeiling) -> None:
    """Use ``ceiling`` for ``device`` and ``dtype`` for the rest of this process, without
    writing it to the on-disk cache (a DDP rank's share of the CPU is not the machine's)."""
    _RUN_CACHE[(device_key(device), dtype)] = ceiling


def clear_run_cache() -> None:
    """Forget the ceilings measured in this process (tests)."""
    _RUN_CACHE.clear()
