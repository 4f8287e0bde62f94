"""The Python API: everything the CLI does, as functions returning records.

    >>> import cnnscope
    >>> report = cnnscope.analyze("resnet50")
    >>> report.totals.macs
    4089184256
    >>> cnnscope.compare(["vgg16", "googlenet"]).ratio_line(...)  # doctest: +SKIP

Every function accepts what the CLI accepts: a zoo name, ``file.py:factory``,
``package.module:factory``, ``torchvision:NAME``/``timm:NAME`` (see ``cnnscope.models``),
and also an ``nn.Module`` instance or a ``ModelSource``.

This is the one orchestration layer: it resolves, builds and traces, and hands the
``ModelReport``s to ``cnnscope.analysis`` and the tracer to ``cnnscope.benchmark``, neither of
which calls back up. One module per job:

- ``analyze_model``: ``analyze``, ``smallest_input``, ``resolve_all``, the CPU fallback;
- ``compare_models``: ``compare``, ``zoo_rows``, ``zoo_table``, ``fvcore_check``;
- ``timing``: ``bench``, and ``bench_row``/``run_sweep``/``run_ddp``/``check_inputs``;
- ``sweep``: ``bench_sweep`` (models x batches x dtypes x modes, DDP or sharded), ``default_models``;
- ``receptive_field``: ``receptive_fields``; ``report_folder``: ``report_folder``;
- ``shapes``: ``output_sizes``, ``minimum_input``, ``valid_sizes_near``; ``too_small``:
  ``explain_too_small``; ``memory``: ``plan_memory``, ``fit_batch``;
- ``model_graph``: ``graph`` (the network as nodes and edges, for ``cnnscope graph``);
- ``gate``: ``make_lock``, ``check_lock``; ``spec``: ``spec_table``, ``spec_tables``.
"""

from __future__ import annotations

import importlib
from typing import Any

from cnnscope.api.analyze_model import (
    DATA_DEPENDENT_NOTE,
    DATA_DEPENDENT_NOTE_OWN,
    analyze,
    check_fits_on,
    resolve_all,
    smallest_input,
    trace_on_cpu,
)
from cnnscope.models import ModelSource, resolve
from cnnscope.trace.records import ModelReport
from cnnscope.trace.standins import meta_copy, meta_stand_ins
from cnnscope.trace.tracer import TRACE_LOCK

# Loaded on first use, so that ``cnnscope params`` (which needs only ``analyze``) does not
# import the lock, spec, memory and timing code: name -> the module that defines it.
_LAZY = {
    "compare": "compare_models", "fvcore_check": "compare_models", "zoo_rows": "compare_models",
    "zoo_table": "compare_models",
    "check_lock": "gate", "make_lock": "gate",
    "fit_batch": "memory", "plan_memory": "memory",
    "minimum_input": "shapes", "output_sizes": "shapes", "valid_sizes_near": "shapes",
    "explain_too_small": "too_small",
    "receptive_fields": "receptive_field",
    "ReportFolder": "report_folder", "report_folder": "report_folder",
    "bench_sweep": "sweep", "default_models": "sweep", "sweep_models": "sweep",
    "spec_table": "spec", "spec_tables": "spec", "traced_zoo_model": "spec",
    "graph": "model_graph",
    "bench": "timing", "bench_row": "timing", "check_inputs": "timing", "run_ddp": "timing",
    "run_sweep": "timing",
}
_MODULES = frozenset(_LAZY.values()) | {"analyze_model"}


def __getattr__(name: str) -> Any:
    if name in _LAZY or name in _MODULES:
        module = importlib.import_module(f"cnnscope.api.{_LAZY.get(name, name)}")
        value = getattr(module, name) if name in _LAZY else module
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'cnnscope.api' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _MODULES)


__all__ = [
    "DATA_DEPENDENT_NOTE", "DATA_DEPENDENT_NOTE_OWN", "ModelReport", "ModelSource", "ReportFolder",
    "TRACE_LOCK", "analyze", "bench", "bench_row", "bench_sweep", "check_fits_on", "check_inputs",
    "check_lock", "compare", "default_models", "explain_too_small", "fit_batch", "fvcore_check",
    "graph", "make_lock", "meta_copy", "meta_stand_ins", "minimum_input", "output_sizes",
    "plan_memory", "receptive_fields", "report_folder", "resolve", "resolve_all", "run_ddp",
    "run_sweep", "smallest_input", "sweep_models", "spec_table", "spec_tables", "trace_on_cpu",
    "traced_zoo_model", "valid_sizes_near", "zoo_rows", "zoo_table",
]
