"""Timing on CUDA and the CPU: warm-up, events, statistics, memory, achieved TFLOP/s.

    >>> from cnnscope.api import bench_row
    >>> from cnnscope.benchmark import BenchSettings
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
    "BenchSettings": "cnnscope.benchmark.settings",
    "RowSpec": "cnnscope.benchmark.runner",
    "plan_rows": "cnnscope.benchmark.runner",
    "matmul_ceiling": "cnnscope.benchmark.ceiling",
    "copy_bandwidth": "cnnscope.benchmark.bandwidth",
    "CopyBandwidth": "cnnscope.benchmark.records",
    "collect_env": "cnnscope.benchmark.env",
    "BenchResult": "cnnscope.benchmark.records",
    "BenchRow": "cnnscope.benchmark.records",
    "PerLayer": "cnnscope.benchmark.records",
    "LayerTiming": "cnnscope.benchmark.records",
    "MatmulCeiling": "cnnscope.benchmark.records",
    "summarize": "cnnscope.benchmark.stats",
    "SettleRule": "cnnscope.benchmark.stats",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnscope.benchmark' has no attribute {name!r}")
