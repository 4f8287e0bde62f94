#!/usr/bin/env python3
"""How long ``cnnscope graph`` takes on the deepest zoo models, and how large its output is.

For each model and depth: the trace (``cnnscope.analyze``, what every command pays), the
graph built from its records (``build_graph``), the DOT and Mermaid text, and the drawing
by Graphviz when a renderer is installed (system ``dot`` first, else ``graphviz-pure``),
with the node count and the SVG size. Medians of ``--repeats`` rounds in one process; a
depth whose graph is over the node limit is timed until its one-line refusal.

    .venv/bin/python benchmarks/graph_speed.py --repeats 3 --markdown reports/graph_speed.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnscope  # noqa: E402
from cnnscope.analysis.graph import MAX_NODES, build_graph  # noqa: E402
from cnnscope.analysis.graph_text import find_renderer  # noqa: E402
from cnnscope.errors import CnnscopeError  # noqa: E402


def _median_s(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet152,densenet264")
    parser.add_argument("--depths", default="1,2,3,leaf")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    try:
        renderer = find_renderer("svg")
    except CnnscopeError:
        renderer = None
    rows = []
    for model in args.models.split(","):
        trace_s, report = _median_s(lambda: cnnscope.analyze(model), args.repeats)
        for d in args.depths.split(","):
            depth = None if d == "leaf" else int(d)
            try:
                build_s, g = _median_s(lambda: build_graph(report, depth=depth), args.repeats)
            except CnnscopeError as err:
                build_s, _ = _median_s(lambda: _refused(report, depth), args.repeats)
                rows.append((model, d, f"refused: {str(err).split(';')[0].split(': ', 1)[1]}",
                             trace_s, build_s, None, None, None))
                continue
            text_s, dot = _median_s(lambda: (g.to_mermaid(), g.to_dot())[1], args.repeats)
            draw_s = size = None
            if renderer:
                start = time.perf_counter()
                done = subprocess.run([*renderer, "-Tsvg"], input=dot.encode(),
                                      capture_output=True, timeout=600)
                draw_s = time.perf_counter() - start
                size = len(done.stdout)
            rows.append((model, d, f"{len(g.nodes)} nodes", trace_s, build_s, text_s, draw_s, size))
    lines = [f"`cnnscope graph` speed ({platform.machine()}, torch {_torch()}, "
             f"renderer: {Path(renderer[0]).name if renderer else 'none'}, node limit "
             f"{MAX_NODES}, median of {args.repeats})", "",
             "| model | depth | graph | trace s | build s | build / trace | DOT+Mermaid s "
             "| Graphviz svg s | svg size |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for model, d, what, trace_s, build_s, text_s, draw_s, size in rows:
        lines.append(f"| {model} | {d} | {what} | {trace_s:.3f} | {build_s:.3f} | "
                     f"{build_s / trace_s:.2f} | {_s(text_s)} | {_s(draw_s)} | "
                     f"{f'{size / 1e3:.0f} kB' if size else '-'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


def _refused(report, depth):
    try:
        build_graph(report, depth=depth)
    except CnnscopeError:
        return None


def _s(v):
    return "-" if v is None else f"{v:.3f}"


def _torch() -> str:
    import torch

    return torch.__version__


if __name__ == "__main__":
    sys.exit(main())
