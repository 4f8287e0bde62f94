"""Several models, or one model two ways: ``compare``, ``zoo_rows``/``zoo_table``, ``fvcore_check``.

Each traces through ``analyze`` and hands the ``ModelReport``s to ``cnnscope.analysis``
(``compare_reports``, ``zoo_row``, the fvcore pairing), which never traces itself.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from cnnscope.api.analyze_model import analyze, resolve_all
from cnnscope.api.timing import bench
from cnnscope.errors import InvalidOptionError, TraceError
from cnnscope.models import ModelSource, resolve
from cnnscope.trace.sizes import DEFAULT_INPUT, check_batch, check_elements, parse_input_size


def compare(
    models: Sequence[str | nn.Module | ModelSource] | str,
    input_size: tuple[int, ...] | str | None = None,
    batch: int = 1,
    *,
    dtype: str = "float32",
    bench: bool = False,
    device: str | torch.device | None = None,
    model_kwargs: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
    bench_options: dict[str, Any] | None = None,
):
    """Compare models side by side (``cnnscope compare``); the first is the reference.

    Returns a ``cnnscope.analysis.compare.Comparison``: per model params (and bytes at
    ``dtype``), MACs, FLOPs, depth in weighted layers, receptive field of the last
    feature map, peak activation memory, and with ``bench=True`` measured latency and
    throughput (on ``device``, default cuda when available, else cpu). Every spec is
    resolved before any model is traced, so an unknown name fails at once.
    ``input_size`` None gives each model its own default input. ``model_kwargs`` goes
    to every builder, or give a list with one dict per model. ``bench_options`` are
    ``cnnscope.benchmark.BenchSettings`` fields for the timing (e.g. ``{"iters": 20}``).
    """
    from cnnscope.analysis.compare import compare_reports, dtype_bytes

    if isinstance(models, (str, nn.Module, ModelSource)):
        models = [models]
    dtype_bytes(dtype)  # a bad dtype fails before any work
    if bench:
        _bench_dtype(dtype)
    if isinstance(input_size, str):
        input_size = parse_input_size(input_size)
    check_batch(batch)
    sources = resolve_all(models, model_kwargs)
    reports = [analyze(s, input_size, batch) for s in sources]
    benches = None
    if bench:
        benches = [_bench_figures(s, r.input_size, batch, device, dtype, bench_options or {})
                   for s, r in zip(sources, reports)]
    return compare_reports(reports, dtype, benches)



def zoo_rows(pattern: str = "*", family: str | None = None, *, counts: bool = True):
    """The zoo summary (``cnnscope zoo``): a ``cnnscope.analysis.zoo_table.ZooRow`` for
    every model matching ``pattern``/``family``; params and MACs (meta device) when
    ``counts``."""
    from cnnscope.analysis.zoo_table import zoo_row
    from cnnscope.zoo import list_models, model_info

    return [zoo_row(model_info(name), analyze(name) if counts else None)
            for name in list_models(pattern, family)]


def zoo_table(pattern: str = "*", family: str | None = None, *, counts: bool = True):
    """``zoo_rows`` as one result (``cnnscope.analysis.zoo_table.ZooTable``): what
    ``cnnscope zoo`` renders in every format."""
    from cnnscope.analysis.zoo_table import ZooTable

    return ZooTable(tuple(zoo_rows(pattern, family, counts=counts)))


def fvcore_check(model: str | ModelSource, input_size: tuple[int, ...] | str | None = None,
                 batch: int = 1, *, depth: int = 0, train: bool = False, **model_kwargs: Any):
    """cnnscope's and fvcore's counts side by side, per layer, with the difference and its
    cause (``cnnscope.analysis.fvcore_check.FvcoreCheck``). fvcore needs real tensors: the
    model is also built on the CPU with real weights."""
    from cnnscope.analysis.fvcore_check import fvcore_check as pair
    from cnnscope.trace.fvcore_counter import fvcore_counts

    check_batch(batch)
    if isinstance(input_size, str):
        input_size = parse_input_size(input_size)
    if isinstance(model, nn.Module):
        raise InvalidOptionError("the fvcore check needs a model name or factory, "
                                 "not a built nn.Module")
    source = model if isinstance(model, ModelSource) else resolve(model, **model_kwargs)
    size = tuple(input_size or source.input_size or DEFAULT_INPUT)
    check_elements(size, batch)
    report = analyze(source, size, batch, train=train)
    with source.contained():
        counts = fvcore_counts(source, size, batch)
    return pair(report, counts, depth)


# compare's --dtype names -> bench's dtype names (bench times only float types).
_BENCH_DTYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def _bench_dtype(dtype: str) -> str:
    from cnnscope.analysis.compare import dtype_bytes

    name, _ = dtype_bytes(dtype)
    if name not in _BENCH_DTYPES:
        raise InvalidOptionError(f"--bench cannot time {name}", "use float32, float16 or bfloat16")
    return _BENCH_DTYPES[name]


def _bench_figures(source: ModelSource | nn.Module, input_size: tuple[int, ...], batch: int,
                   device: str | torch.device | None, dtype: str, options: dict[str, Any]):
    """Timing figures of one model for ``compare --bench``."""
    from cnnscope.analysis.compare import BenchFigures

    if isinstance(source, nn.Module):
        raise InvalidOptionError("--bench needs a model name or factory, not a built nn.Module",
                                 "use cnnscope.benchmark on it instead")
    row = bench(source, input_size, batch, device=None if device is None else str(device),
                dtype=_bench_dtype(dtype), **options)
    if not row.ok:
        raise TraceError(f"benchmarking {row.model} failed: {row.error}")
    return BenchFigures(device=row.device, latency_ms=row.median_ms, throughput=row.throughput,
                        device_name=row.device_name)
