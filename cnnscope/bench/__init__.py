"""Timing on CUDA and the CPU: warm-up, events, statistics, memory, achieved TFLOP/s.

    >>> from cnnscope.api import bench_row
    >>> from cnnscope.bench import BenchSettings
    >>> row = bench_row("resnet18", batch=8, dtype="fp32", mode="infer",
    ...                 settings=BenchSettings(device="cpu", iters=10))
    >>> row.median_ms, row.throughput, row.achieved_tflops

``cnnscope.api`` runs it (``bench``, ``bench_row``, ``run_sweep``): a row's meta-device
trace comes from the API's ``analyze``, handed down as a ``trace`` argument, so nothing
here imports the API. Importing this package does not import torch; ``records`` and
``stats`` are torch-free (the renderers use them), the rest is loaded on first use.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "BenchSettings": "cnnscope.bench.settings",
    "RowSpec": "cnnscope.bench.runner",
    "plan_rows": "cnnscope.bench.runner",
    "matmul_ceiling": "cnnscope.bench.ceiling",
    "copy_bandwidth": "cnnscope.bench.bandwidth",
    "CopyBandwidth": "cnnscope.bench.records",
    "collect_env": "cnnscope.bench.env",
    "BenchResult": "cnnscope.bench.records",
    "BenchRow": "cnnscope.bench.records",
    "PerLayer": "cnnscope.bench.records",
    "LayerTiming": "cnnscope.bench.records",
    "MatmulCeiling": "cnnscope.bench.records",
    "summarize": "cnnscope.bench.stats",
    "SettleRule": "cnnscope.bench.stats",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnscope.bench' has no attribute {name!r}")
