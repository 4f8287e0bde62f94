"""Counting the backward pass with the registry's shape kernels against without them.

On meta, the backward counter (``cnnscope.trace.backward``) takes an op's result from the
op registry's shape kernel where the op has one; without them, PyTorch's own meta kernels
run (Python decompositions for the backward of activations and batch norm). Both sides
run in this one process, alternating model by model (``--pairs`` times), on one thread,
timed in CPU seconds (``time.process_time``) after a warm-up that pays the imports. A
fresh interpreter then counts one model's backward to show what its first trace imports.

Run: python benchmarks/bench_backward.py [--models resnet50,densenet121,mobilenet_v2] [--pairs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FRESH = ("import sys, cnnscope; cnnscope.analyze({name!r}, train=True); "
         "print(sorted(m for m in ('torch._dynamo', 'sympy') if m in sys.modules))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,densenet121,mobilenet_v2")
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()

    import torch

    import cnnscope
    from cnnscope.trace import backward

    torch.set_num_threads(1)
    with_kernels = backward.meta_shortcut

    def without_kernels(*_):
        return NotImplemented

    names = args.models.split(",")
    for name in names:  # warm-up: every import, both ways
        for shortcut in (with_kernels, without_kernels):
            backward.meta_shortcut = shortcut
            cnnscope.analyze(name, train=True)
    times = {(n, side): [] for n in names for side in ("with", "without")}
    for _ in range(args.pairs):
        for name in names:
            for side, shortcut in (("with", with_kernels), ("without", without_kernels)):
                backward.meta_shortcut = shortcut
                start = time.process_time()
                cnnscope.analyze(name, train=True)
                times[name, side].append(time.process_time() - start)
    backward.meta_shortcut = with_kernels

    print(f"torch {torch.__version__}, one thread, CPU time, medians of {args.pairs} "
          "alternating runs (build on meta + forward trace + backward count)\n")
    print("| model | with the shape kernels | PyTorch's meta kernels | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name in names:
        fast = statistics.median(times[name, "with"])
        slow = statistics.median(times[name, "without"])
        print(f"| `{name}` | {fast * 1000:.0f} ms | {slow * 1000:.0f} ms | {slow / fast:.1f}x faster |")
    done = subprocess.run([sys.executable, "-c", FRESH.format(name=names[0])], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    print(f"\nA fresh interpreter counting `{names[0]}`'s backward imports: {done.stdout.strip()}")


if __name__ == "__main__":
    main()
