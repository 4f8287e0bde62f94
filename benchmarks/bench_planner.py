"""The memory planner with the registry's exact batch-norm kernels against without them.

``cnnscope memory`` plans a step on meta (``cnnscope.trace.memory``): batch norm's own
meta kernels are Python decompositions, and the planner runs up to three passes (the
output shapes, a warm-up step, the measured step). The registry's kernels marked
``meta_exact`` give the same tensors to the stride. Both sides run in this one process,
alternating model by model (``--pairs`` times), on one thread, timed in CPU seconds
(``time.process_time``) after a warm-up that pays the imports; each pair's two plans
must be equal.

Run: python benchmarks/bench_planner.py [--models resnet50,densenet121,mobilenet_v2] [--batch 32] [--pairs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,densenet121,mobilenet_v2")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()

    import torch

    from cnnscope.api import plan_memory
    from cnnscope.trace import memory

    torch.set_num_threads(1)
    with_kernels = memory.exact_meta_op

    def without_kernels(*_):
        return NotImplemented

    def plan(name, shortcut):
        memory.exact_meta_op = shortcut
        start = time.process_time()
        result = plan_memory(name, batch=args.batch)
        return time.process_time() - start, result

    names = args.models.split(",")
    for name in names:  # warm-up: every import, both ways
        plan(name, with_kernels)
        plan(name, without_kernels)
    print(f"plan_memory(batch={args.batch}), CPU ms, median of {args.pairs} alternating pairs")
    print(f"{'model':<14} {'exact kernels':>14} {'PyTorch meta':>13} {'speed-up':>9}")
    for name in names:
        fast, slow = [], []
        for _ in range(args.pairs):
            t_fast, a = plan(name, with_kernels)
            t_slow, b = plan(name, without_kernels)
            assert a == b, f"{name}: the plans differ"
            fast.append(t_fast)
            slow.append(t_slow)
        f, s = statistics.median(fast), statistics.median(slow)
        print(f"{name:<14} {f * 1000:>14.0f} {s * 1000:>13.0f} {s / f:>8.1f}x")
    memory.exact_meta_op = with_kernels


if __name__ == "__main__":
    main()
