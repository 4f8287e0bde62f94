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
``ModelReport``s to ``cnnscope.analysis`` and the tracer to ``cnnscope.bench``, neither of
which calls back up. One module per job:

- ``analyze_model``: ``analyze``, ``smallest_input``, ``resolve_all``, the CPU fallback;
- ``compare_models``: ``compare``, ``zoo_rows``, ``fvcore_check``;
- ``timing``: ``bench``, and ``bench_row``/``run_sweep``/``run_ddp``/``check_inputs``;
- ``shapes``: ``minimum_input``; ``memory``: ``plan_memory``, ``fit_batch``;
- ``gate``: ``make_lock``, ``check_lock``; ``spec``: ``spec_table``, ``spec_tables``.
"""

from __future__ import annotations

from cnnscope.api.analyze_model import (
    DATA_DEPENDENT_NOTE,
    DATA_DEPENDENT_NOTE_OWN,
    analyze,
    check_fits_on,
    resolve_all,
    smallest_input,
    trace_on_cpu,
)
from cnnscope.api.compare_models import compare, fvcore_check, zoo_rows
from cnnscope.api.gate import check_lock, make_lock
from cnnscope.api.memory import fit_batch, plan_memory
from cnnscope.api.shapes import minimum_input
from cnnscope.api.spec import spec_table, spec_tables, traced_zoo_model
from cnnscope.api.timing import bench, bench_row, check_inputs, run_ddp, run_sweep
from cnnscope.models import ModelSource, resolve
from cnnscope.trace.records import ModelReport
from cnnscope.trace.standins import meta_copy, meta_stand_ins
from cnnscope.trace.tracer import TRACE_LOCK

__all__ = [
    "DATA_DEPENDENT_NOTE", "DATA_DEPENDENT_NOTE_OWN", "ModelReport", "ModelSource", "TRACE_LOCK",
    "analyze", "bench", "bench_row", "check_fits_on", "check_inputs", "check_lock", "compare",
    "fit_batch", "fvcore_check", "make_lock", "meta_copy", "meta_stand_ins", "minimum_input",
    "plan_memory", "resolve", "resolve_all", "run_ddp", "run_sweep", "smallest_input",
    "spec_table", "spec_tables", "trace_on_cpu", "traced_zoo_model", "zoo_rows",
]
