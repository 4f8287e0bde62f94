"""The dense matmul ceiling: what this device really does in a dtype, measured, not quoted.

A model's achieved TFLOP/s means little against a datasheet peak (boost clocks, sparsity
factors, the dtype's own peak). cnnscope measures the best rate of one large square
``torch.mm`` in the row's dtype on the row's device and reports the model's rate as a
fraction of it: the same basis (2 x multiply-accumulates per second), the same library
stack, the same clocks.

Each (device, dtype) is measured at most once per run and cached in a JSON file under
the user's cache folder (``$CNNSCOPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/cnnscope``,
else ``~/.cache/cnnscope``), keyed by device name, torch and CUDA versions; later runs
reuse it until ``remeasure=True`` (``--remeasure-ceiling``).
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import torch

from cnnscope.bench.env import device_name
from cnnscope.bench.precision import fp32_math, tensor_dtype
from cnnscope.bench.records import MatmulCeiling
from cnnscope.bench.timing import timer_for

CACHE_FILE = "matmul_ceiling.json"
# N x N sizes tried. On a GPU, 8192 fills any current part; 4096 is there because some
# parts peak below it. On a CPU, larger than 1024 only costs time.
CUDA_SIZES = (4096, 8192)
CPU_SIZES = (512, 1024)

_RUN_CACHE: dict[tuple[str, str], MatmulCeiling] = {}  # measured in this process


def cache_dir() -> Path:
    """Where cnnscope keeps its caches (created on first write)."""
    explicit = os.environ.get("CNNSCOPE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "cnnscope"


def cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def device_key(device: torch.device) -> str:
    """Cache key: the ceiling changes with the device and with the kernels torch ships."""
    cuda = f" | cuda {torch.version.cuda}" if device.type == "cuda" else ""
    return f"{device_name(device)} | torch {torch.__version__}{cuda}"


def measure_matmul(device: torch.device, dtype: str, sizes: Sequence[int] | None = None, *,
                   reps: int = 10, budget_s: float = 2.0) -> tuple[float, int]:
    """Best TFLOP/s of ``torch.mm`` over ``sizes`` (ascending), and the N that gave it.

    Per size: one untimed call (kernel selection, allocation), then up to ``reps`` timed
    calls within the time budget (at least 3); the fastest call counts. A ceiling is what
    the device can do, and interference (another process, a clock dip) only ever slows
    a call down, so the minimum time is its estimator, where a model's typical cost is
    the median. A larger size whose one call would exceed
    the budget is skipped (a slow dtype on a CPU would otherwise take minutes).
    """
    device = torch.device(device)
    sizes = tuple(sizes or (CUDA_SIZES if device.type == "cuda" else CPU_SIZES))
    timer = timer_for(device)
    best, best_n = 0.0, sizes[0]
    per_size = budget_s / len(sizes)
    # Generated on the device (a CPU-side 8192^2 randn would take longer than the timing),
    # with its own generator so the global RNG the rows seed is left alone.
    gen = torch.Generator(device=device).manual_seed(0)
    with fp32_math(device, dtype):
        for n in sizes:
            a = torch.randn(n, n, generator=gen, device=device).to(tensor_dtype(dtype))
            b = torch.randn(n, n, generator=gen, device=device).to(tensor_dtype(dtype))
            out = torch.empty(n, n, device=device, dtype=tensor_dtype(dtype))
            torch.mm(a, b, out=out)
            timer.sync()
            times: list[float] = []
            start = time.perf_counter()
            while len(times) < reps:
                m0 = timer.mark()
                torch.mm(a, b, out=out)
                m1 = timer.mark()
                timer.sync()  # one product per sample: the budget check needs real time
                times.append(timer.elapsed_ms(m0, m1))
                if len(times) >= 3 and time.perf_counter() - start > per_size:
                    break
            t = min(times)
            rate = 2.0 * n ** 3 / (t * 1e-3) / 1e12
            if rate > best:
                best, best_n = rate, n
            del a, b, out
            following = [m for m in sizes if m > n]
            if following and t * 1e-3 * (following[0] / n) ** 3 > per_size:
                break  # the next size would blow the budget on its own (a slow dtype on a CPU)
    return best, best_n


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def cached_measurement(entry: object, rate_key: str, size_key: str
                       ) -> tuple[float, int, str, str, str] | None:
    """(rate, size, device_name, measured_at, torch_version) of a cache entry, or None.

    A cache is data that anything may have written: a value of the wrong type, or a rate
    or size that is not a positive finite number, counts as damaged (then the figure is
    measured again), never as a measurement. Shared by the matmul ceiling and the copy
    bandwidth caches.
    """
    if not isinstance(entry, dict):
        return None
    try:
        rate, size = float(entry[rate_key]), int(entry[size_key])
        texts = [entry[k] for k in ("device_name", "measured_at", "torch_version")]
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(rate) or rate <= 0 or size <= 0 or not all(isinstance(t, str) for t in texts):
        return None
    return rate, size, texts[0], texts[1], texts[2]


def _cached_entry(data: dict, key: str, dtype: str) -> MatmulCeiling | None:
    """The cached ceiling for (device key, dtype), or None when absent or damaged."""
    per_device = data.get(key)
    found = cached_measurement(per_device.get(dtype) if isinstance(per_device, dict) else None,
                               "tflops", "n")
    if found is None:
        return None
    tflops, n, name, when, version = found
    return MatmulCeiling(device_name=name, dtype=dtype, tflops=tflops, n=n, measured_at=when,
                         torch_version=version, cached=True)


def _write_cache(path: Path, data: dict) -> bool:
    """Write atomically; False (and no error) when the cache folder is not writable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return True
    except (OSError, ValueError):
        return False


def matmul_ceiling(device: torch.device | str, dtype: str, *, remeasure: bool = False,
                   path: Path | None = None, sizes: Sequence[int] | None = None) -> MatmulCeiling:
    """The ceiling for (device, dtype): from this run, else the cache file, else measured now."""
    dev = torch.device(device)
    key = device_key(dev)
    if not remeasure and (key, dtype) in _RUN_CACHE:
        return _RUN_CACHE[(key, dtype)]
    file = path or cache_path()
    data = _read_cache(file)
    ceiling = None if remeasure else _cached_entry(data, key, dtype)
    if ceiling is not None:
        _RUN_CACHE[(key, dtype)] = ceiling
        return ceiling
    tflops, n = measure_matmul(dev, dtype, sizes)
    ceiling = MatmulCeiling(device_name=device_name(dev), dtype=dtype, tflops=tflops, n=n,
                            measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                            torch_version=torch.__version__, cached=False)
    _RUN_CACHE[(key, dtype)] = ceiling
    data = _read_cache(file)  # re-read: another process may have written meanwhile
    entry = ceiling.to_dict()
    entry.pop("cached")
    data.setdefault(key, {})[dtype] = entry
    _write_cache(file, data)
    return ceiling


def clear_run_cache() -> None:
    """Forget the ceilings measured in this process (tests)."""
    _RUN_CACHE.clear()
