"""``cnnscope.graph``: the network drawn as the papers draw it, as data (``ModelGraph``)."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Sequence

from torch import nn

from cnnscope.analysis.graph import ModelGraph, build_graph
from cnnscope.api.analyze_model import analyze
from cnnscope.errors import UserFileError
from cnnscope.models import ModelSource


def graph(model: str | nn.Module | ModelSource, input_size: Any = None, *,
          depth: int | None = None, focus: str | Sequence[str] = (), expand: bool = False,
          rf: bool = False, shade: str | None = "macs",
          times: str | os.PathLike | Mapping[str, float] | None = None,
          **model_kwargs: Any) -> ModelGraph:
    """Trace ``model`` once (on the meta device) and return its graph of modules.

    ``depth`` 1 (the default without ``focus``) draws the model's children, 2 their
    children, and so on; a depth beyond the tree is the leaf depth. ``focus`` (a module
    name, or several) draws those modules alone, at leaf depth unless ``depth`` is given
    (then counted from the focused module). Identical consecutive blocks are one node
    with ``repeat`` = N unless ``expand``. ``rf`` adds each node's receptive field;
    ``shade`` (macs, params, time, or None) weighs the nodes; ``times`` is the per-layer
    JSON of ``cnnscope bench --per-layer`` (or a dict name -> ms) for ``shade="time"``.

        >>> g = cnnscope.graph("googlenet", focus="inception3a")  # doctest: +SKIP
        >>> print(g.to_mermaid())                                   # doctest: +SKIP
    """
    roots = (focus,) if isinstance(focus, str) else tuple(focus or ())
    if depth is None and not roots:
        depth = 1
    layer_times = _read_times(times) if times is not None and shade == "time" else None
    report = analyze(model, input_size, **model_kwargs)
    fields = None
    if rf:
        from cnnscope.analysis.receptive_field import receptive_fields

        fields = {f.index: tuple(f.receptive_field) for f in receptive_fields(report).layers
                  if f.is_spatial and None not in f.receptive_field}
    return build_graph(report, depth=depth, focus=roots, expand=expand, fields=fields,
                       shade=shade, times=layer_times)


def _read_times(times: str | os.PathLike | Mapping[str, float]) -> dict[str, float]:
    """Layer name -> forward milliseconds, from ``bench --per-layer`` JSON (its first row
    with per-layer times) or a dict; a file that holds none is a one-line error."""
    if isinstance(times, Mapping):
        data = dict(times)
    else:
        try:
            with open(times, encoding="utf-8") as fh:
                doc = json.load(fh)
        except OSError as exc:
            raise UserFileError(f"cannot read {os.fspath(times)!r}: {exc.strerror or exc}",
                                "give the JSON written by 'cnnscope bench --per-layer "
                                "-o FILE.json'") from None
        except (ValueError, UnicodeDecodeError):
            raise UserFileError(f"{os.fspath(times)!r} is not JSON",
                                "give the JSON written by 'cnnscope bench --per-layer "
                                "-o FILE.json'") from None
        data = {}
        rows = doc.get("rows") if isinstance(doc, dict) else None
        for row in rows or ():
            layers = ((row or {}).get("per_layer") or {}).get("layers") if isinstance(row, dict) else None
            if layers:
                data = {str(x.get("name")): x.get("fwd_ms") for x in layers if isinstance(x, dict)}
                break
        if not data:
            raise UserFileError(f"{os.fspath(times)!r} holds no per-layer times",
                                "run 'cnnscope bench MODEL --per-layer -o FILE.json' first")
    clean = {}
    for name, ms in data.items():
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
            raise UserFileError(f"per-layer time of {name!r} is {ms!r}, not a finite number of "
                                "milliseconds >= 0", "give the JSON written by 'cnnscope bench "
                                "--per-layer'")
        clean[name] = float(ms)
    return clean
