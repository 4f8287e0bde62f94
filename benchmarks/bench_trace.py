"""Tracing cost, as ratios measured in one run (the machine is shared and noisy).

1. ``cnnscope params resnet152`` end to end vs ``python -c "import torch, typer, rich"``
   (target: <= 1.2x): the median of N alternating runs of each.
2. cnnscope.analyze vs fvcore's FlopCountAnalysis on resnet152 at 224x224, in-process,
   after imports (target: >= 20x faster).
3. Peak resident memory of ``cnnscope params resnet152`` at 3x224x224 batch 1 vs
   3x1024x1024 batch 64: meta tracing must not grow with the input.
4. Tracing the whole zoo at default inputs in one process (target: < 5 s).

Run: python benchmarks/bench_trace.py [--repeats 5] [--markdown reports/bench_trace.md]
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def peak_rss_mib(cmd: list[str]) -> float:
    code = ("import resource, runpy, sys; sys.argv = %r; "
            "import cnnscope.cli.main as m\n"
            "try:\n    m.app()\nexcept SystemExit:\n    pass\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)" % (cmd,))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args()
    py = sys.executable
    cli = [py, "-m", "cnnscope", "params", "resnet152", "--format", "json"]
    base = [py, "-c", "import torch, typer, rich"]
    wall(base), wall(cli)  # warm the file cache
    base_t, cli_t = [], []
    for _ in range(args.repeats):  # alternate so drift hits both equally
        base_t.append(wall(base))
        cli_t.append(wall(cli))
    startup = (statistics.median(cli_t), statistics.median(base_t))

    import torch
    from fvcore.nn import FlopCountAnalysis

    import cnnscope
    from cnnscope.zoo import get_model, list_models

    cnnscope.analyze("resnet152")  # first-call warm-up (lazy imports in torch)
    ours = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        cnnscope.analyze("resnet152")
        ours.append(time.perf_counter() - t)
    model = get_model("resnet152").eval()
    x = torch.zeros(1, 3, 224, 224)
    theirs = []
    for _ in range(max(1, args.repeats // 2)):
        t = time.perf_counter()
        fca = FlopCountAnalysis(model, x)
        fca.unsupported_ops_warnings(False)
        fca.total()
        theirs.append(time.perf_counter() - t)
    speed = (statistics.median(ours), statistics.median(theirs))

    small = peak_rss_mib(["cnnscope", "params", "resnet152", "--format", "json", "-o", "/dev/null"])
    large = peak_rss_mib(["cnnscope", "params", "resnet152", "--input", "3x1024x1024", "--batch", "64",
                          "--format", "json", "-o", "/dev/null"])

    names = list_models()
    t = time.perf_counter()
    for name in names:
        cnnscope.analyze(name)
    zoo = time.perf_counter() - t

    lines = [
        "# Tracing benchmark",
        "",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"{resource.getpagesize() and ''}{__import__('os').cpu_count()} cores; Python "
        f"{platform.python_version()}, torch {torch.__version__}. Medians of {args.repeats} runs.",
        "",
        "| measurement | cnnscope | reference | ratio | target |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| `cnnscope params resnet152` vs `python -c 'import torch, typer, rich'` (wall) | "
        f"{startup[0]:.2f} s | {startup[1]:.2f} s | {startup[0] / startup[1]:.2f}x | <= 1.2x |",
        f"| analyze(resnet152) vs fvcore FlopCountAnalysis, 224x224 (in-process) | "
        f"{speed[0] * 1000:.0f} ms | {speed[1] * 1000:.0f} ms | {speed[1] / speed[0]:.0f}x faster | >= 20x |",
        f"| peak RSS, resnet152 3x1024x1024 batch 64 vs 3x224x224 batch 1 | {large:.0f} MiB | "
        f"{small:.0f} MiB | {large / small:.2f}x | ~1x (meta) |",
        f"| trace all {len(names)} zoo models at default input, one process | {zoo:.2f} s | | | < 5 s |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
