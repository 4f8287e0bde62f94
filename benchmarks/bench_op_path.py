"""The per-op tracing path, this checkout against an older revision, as a ratio of CPU time.

Each traced aten op goes through the dispatch mode, the op table (or, before issue 14, three
if-chains: cost, geometry, meta kernel) and a meta shape kernel. To time that path alone the
models are traced with ``memoize=False`` (no leaf or block replay), on one thread, and the
CPU time (``time.process_time``) of each trace is taken, so the load of a shared machine
matters less than for wall time. Each side runs in its own process, alternating, ``--pairs``
times; a process reports the median of ``--repeats`` traces per model.

Run: python benchmarks/bench_op_path.py [--baseline 4dc2f9c] [--pairs 3] [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import statistics, sys, time
import torch
from cnnscope.trace.meta import building_on
from cnnscope.trace.memo import clear_memo
from cnnscope.trace.tracer import trace_module
from cnnscope.zoo import get_model

torch.set_num_threads(1)
repeats = int(sys.argv[1])
for name in sys.argv[2].split(","):
    with building_on("meta"):
        model = get_model(name)
    trace_module(model, (3, 224, 224), memoize=False)  # warm-up: imports, first calls
    times = []
    for _ in range(repeats):
        clear_memo()
        start = time.process_time()
        trace_module(model, (3, 224, 224), memoize=False)
        times.append(time.process_time() - start)
    print(name, statistics.median(times))
"""


def run_side(path: Path, repeats: int, models: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(path))
    out = subprocess.run([sys.executable, "-c", WORKER, str(repeats), models], env=env,
                         cwd=path, check=True, capture_output=True, text=True).stdout
    return {name: float(t) for name, t in (line.split() for line in out.splitlines())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="4dc2f9c", help="git revision to compare with")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--models", default="resnet152,densenet121")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as old:
        archive = subprocess.run(["git", "archive", args.baseline], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
        before: dict[str, list[float]] = {}
        after: dict[str, list[float]] = {}
        for _ in range(args.pairs):
            for side, path in ((before, Path(old)), (after, ROOT)):
                for name, t in run_side(path, args.repeats, args.models).items():
                    side.setdefault(name, []).append(t)
    print(f"per-op trace CPU time (memoize=False, 1 thread), medians of {args.repeats} traces, "
          f"{args.pairs} alternating process pairs; before = {args.baseline}")
    print("| model | before ms | after ms | after/before |")
    print("| --- | ---: | ---: | ---: |")
    for name in before:
        b, a = statistics.median(before[name]), statistics.median(after[name])
        print(f"| {name} | {b * 1e3:.1f} | {a * 1e3:.1f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
