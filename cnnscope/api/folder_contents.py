"""What ``cnnscope report`` writes to a folder, through the API: ``report_folder``.

Every model traced, the comparison of them and each model's layer table grouped to a
depth. Writing the files is the renderers' job (``cnnscope.report.files.write_report``):
this layer never writes CSV, JSON or Markdown itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from cnnscope.analysis.aggregate import group_by_depth
from cnnscope.analysis.compare import Comparison, compare_reports, dtype_bytes
from cnnscope.api.analyze_model import analyze, resolve_all
from cnnscope.errors import InvalidOptionError
from cnnscope.trace.records import ModelReport


@dataclass(frozen=True)
class ReportFolder:
    """The contents of a report folder: one trace per model, their comparison, and each
    model's rows for the Markdown layer table (grouped to ``depth``)."""

    reports: tuple[ModelReport, ...]
    comparison: Comparison
    rows: tuple[Any, ...]  # one list of rows per model (``analysis.aggregate.group_by_depth``)
    depth: int


def check_report_options(depth: int, dtype: str) -> None:
    """A negative ``depth`` or an unknown ``dtype`` fails before any model is resolved."""
    if depth < 0:
        raise InvalidOptionError(f"--depth {depth} is negative", "use 0 (every layer) or more")
    dtype_bytes(dtype)


def report_folder(models: Sequence[Any], input_size: Any = None, batch: int = 1, *,
                  dtype: str = "float32", depth: int = 1,
                  model_kwargs: Any = None) -> ReportFolder:
    """Trace every model and compare them (``cnnscope report``): a ``ReportFolder``.

    ``models``: zoo names, specs, ``ModelSource``s or ``nn.Module``s (every name is
    resolved before any is traced); ``model_kwargs`` one dict for every model or one per
    model. ``dtype`` sizes the parameter memory of the comparison; ``depth`` is the
    module depth of each model's layer table (0: every layer). Write it with
    ``cnnscope.report.files.write_report``.

        >>> from cnnscope.api import report_folder
        >>> folder = report_folder(["vgg16", "googlenet"])
        >>> [r.model for r in folder.reports]  # doctest: +SKIP
        ['vgg16', 'googlenet']
    """
    check_report_options(depth, dtype)
    sources = resolve_all(models, model_kwargs)  # a bad name fails before any work
    reports = tuple(analyze(s, input_size, batch) for s in sources)
    return ReportFolder(reports, compare_reports(reports, dtype),
                        tuple(group_by_depth(r, depth) for r in reports), depth)
