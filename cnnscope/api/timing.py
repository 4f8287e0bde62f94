"""Timing through the API: ``bench`` (one row), and the sweep entry points the CLI uses.

``cnnscope.benchmark`` measures; the meta-device trace each row needs (MACs, shapes, layer
names) comes from ``analyze``, handed down as the ``trace`` callable, so that bench never
imports the API.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from cnnscope.api.analyze_model import analyze, resolve_all
from cnnscope.models import ModelSource, resolve
from cnnscope.trace.sizes import check_batch, parse_input_size


def bench(
    model: str | ModelSource,
    input_size: tuple[int, ...] | str | None = None,
    batch: int = 1,
    *,
    device: str | None = None,
    dtype: str = "fp32",
    mode: str = "infer",
    **settings: Any,
):
    """Time a model (``cnnscope bench``): returns a ``cnnscope.benchmark.BenchRow``.

    ``device`` None: cuda when available, else cpu. ``dtype`` fp32 (strict IEEE), tf32,
    bf16 or fp16 (autocast); ``mode`` infer or train. Other keyword arguments are
    ``cnnscope.benchmark.BenchSettings`` fields (``iters``, ``min_time``, ``warmup``,
    ``channels_last``, ``compile``...). A failed run is a row whose ``status`` says why.
    """
    from cnnscope.benchmark.settings import BenchSettings

    check_batch(batch)
    if isinstance(input_size, str):
        input_size = parse_input_size(input_size)
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    src = model if isinstance(model, ModelSource) else resolve(model)
    options = {"ceiling": False, **settings}  # the matmul ceiling is for sweeps, not one row
    return bench_row(src, batch, dtype, mode,
                     BenchSettings(device=dev, input_size=tuple(input_size) if input_size else None,
                                   **options))


def bench_row(source: ModelSource | str, batch: int, dtype: str, mode: str, settings: Any,
              **options: Any):
    """One measured row (``cnnscope.benchmark.runner.bench_row``) with ``analyze`` as its tracer."""
    from cnnscope.benchmark import runner

    src = resolve(source) if isinstance(source, str) else source
    return runner.bench_row(src, batch, dtype, mode, settings, trace=analyze, **options)


def run_sweep(specs: Sequence[Any], settings: Any, **options: Any):
    """Every row of a sweep (``cnnscope.benchmark.runner.run_sweep``) with ``analyze`` as its
    tracer; ``options``: ``on_start``, ``on_done``."""
    from cnnscope.benchmark import runner

    return runner.run_sweep(specs, settings, trace=analyze, **options)


def run_ddp(job: Any):
    """A DDP or sharded sweep (``cnnscope.benchmark.ddp.run``) with ``analyze`` as its tracer
    and ``resolve_all`` as its resolver: each rank resolves and builds its models in its
    own process (see ``cnnscope.benchmark.ddp.run``)."""
    from cnnscope.benchmark import ddp

    return ddp.run(job, analyze, resolve_all)


def check_inputs(sources: Sequence[ModelSource], input_size: Sequence[int] | None) -> None:
    """Trace every model once on the meta device (batch 1, eval) before anything is timed.

    An input a model cannot take (too small for its pooling, the wrong channel count) is
    then a one-line error for the whole command, before a minute of measuring and a file
    of failed rows. Nothing is allocated, and a zoo model traces in milliseconds. A model
    that fails to trace for another reason is left to fail its own rows, with the reason.
    """
    from cnnscope.errors import CnnscopeError

    for src in sources:
        try:
            analyze(src, tuple(input_size) if input_size else None, 1)  # None: the model's own
        except CnnscopeError:
            raise
        except Exception:  # noqa: BLE001 - reported by the row, where it has context
            pass
