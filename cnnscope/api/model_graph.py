"""``cnnscope.graph``: the network drawn as the papers draw it, as data (``ModelGraph``)."""

from __future__ import annotations

import json
import math
import os
import stat
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
    JSON of ``cnnscope bench --per-layer`` (or a dict name -> ms): given with the default
    shade, the nodes are shaded by time.

        >>> g = cnnscope.graph("googlenet", focus="inception3a")  # doctest: +SKIP
        >>> print(g.to_mermaid())                                   # doctest: +SKIP
    """
    roots = (focus,) if isinstance(focus, str) else tuple(focus or ())
    if depth is None and not roots:
        depth = 1
    if times is not None and shade == "macs":
        shade = "time"  # measured times given: they are what to shade by
    layer_times = _read_times(times) if times is not None and shade == "time" else None
    report = analyze(model, input_size, **model_kwargs)
    fields = None
    if rf:
        from cnnscope.analysis.receptive_field import receptive_fields

        fields = {f.index: tuple(f.receptive_field) for f in receptive_fields(report).layers
                  if f.is_spatial and None not in f.receptive_field}
    return build_graph(report, depth=depth, focus=roots, expand=expand, fields=fields,
                       shade=shade, times=layer_times)


MAX_TIMES_BYTES = 64 * 2**20
_HINT = "give the JSON written by 'cnnscope bench MODEL --per-layer -o FILE.json'"


def _load_json(path: str) -> Any:
    """A bench JSON file: a regular file (never a FIFO or device that would block or never
    end), at most 64 MiB, strict JSON; every problem is one line."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise UserFileError(f"{path!r} is not a regular file", _HINT)
        with open(path, "rb") as fh:
            raw = fh.read(MAX_TIMES_BYTES + 1)
    except OSError as exc:
        raise UserFileError(f"cannot read {path!r}: {exc.strerror or exc}", _HINT) from None
    if len(raw) > MAX_TIMES_BYTES:
        raise UserFileError(f"{path!r} is larger than {MAX_TIMES_BYTES // 2**20} MiB", _HINT)
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise UserFileError(f"{path!r} is not JSON", _HINT) from None


def _read_times(times: str | os.PathLike | Mapping[str, float]) -> dict[str, float]:
    """Layer name -> forward milliseconds, from ``bench --per-layer`` JSON (its first row
    with per-layer times) or a dict; a file that holds none is a one-line error."""
    if isinstance(times, Mapping):
        data = dict(times)
    else:
        doc = _load_json(os.fspath(times))
        data = {}
        rows = doc.get("rows") if isinstance(doc, dict) else None
        for row in rows if isinstance(rows, list) else ():
            per = row.get("per_layer") if isinstance(row, dict) else None
            layers = per.get("layers") if isinstance(per, dict) else None
            if isinstance(layers, list) and layers:
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
