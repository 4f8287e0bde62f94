"""cnnscope: architecture analyzer and profiler for convolutional networks.

The Python API mirrors the CLI (which is a thin layer over it):

- ``analyze(model, input_size=None, batch=1)`` traces a model into a ``ModelReport``
  (per-layer records, totals, ``to_pandas()``, ``to_csv()``, ``to_json()``);
- ``compare(models, ...)`` puts models side by side (a ``Comparison``);
- ``graph(model, depth=1, focus=...)`` the network as nodes and edges with shapes
  (``to_mermaid()``, ``to_dot()``, ``render(path)``);
- ``receptive_fields(model, input_size=None)`` every layer's receptive field, effective
  stride and padding (``cnnscope rf``); ``output_sizes(model, input_size=None, min=...,
  near=...)`` every layer's output size with its formula, and input limits (``cnnscope shape``);
- ``bench(model, ...)`` measures latency and throughput (a ``BenchRow``); ``bench_sweep(models,
  settings=...)`` a whole sweep, on one device or DDP ranks (``cnnscope bench``);
- ``report_folder(models, ...)`` what ``cnnscope report`` writes: traces and their comparison;
- ``resolve(spec)`` turns a zoo name or ``file.py:factory`` into a buildable source;
- ``register_formula(op_or_module_class, formula)`` counts your own op or module.

The names load on first use, so ``import cnnscope`` (and ``cnnscope --help``) does not
import torch.
"""

from __future__ import annotations

from typing import Any

from cnnscope.version import __version__

_LAZY = {
    "analyze": "cnnscope.api",
    "compare": "cnnscope.api",
    "graph": "cnnscope.api",
    "receptive_fields": "cnnscope.api",
    "output_sizes": "cnnscope.api",
    "bench": "cnnscope.api",
    "bench_sweep": "cnnscope.api",
    "report_folder": "cnnscope.api",
    "meta_copy": "cnnscope.api",
    "meta_stand_ins": "cnnscope.api",
    "smallest_input": "cnnscope.api",
    "resolve": "cnnscope.models",
    "register_formula": "cnnscope.ops.registry",
    "ModelSource": "cnnscope.models",
    "CnnscopeError": "cnnscope.errors",
    "LayerRecord": "cnnscope.trace.records",
    "ModelReport": "cnnscope.trace.records",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'cnnscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _load_renderers(result_type: type) -> None:
    """Import the renderers of ``result_type`` (each registers its result type with
    ``cnnscope.results``' ``document`` or ``render``): the results sit below
    ``cnnscope.report`` and may not import it, so the package root, imported first whatever
    a user imports, says how."""
    from cnnscope.report.render import load_renderers

    load_renderers(result_type)


from cnnscope import results as _results  # noqa: E402

_results.RENDERERS_LOADER = _load_renderers
