"""Tracing cost, as ratios measured in one run (the machine is shared and noisy).

1. ``cnnscope params resnet152`` end to end (its default table, and ``--format json``) vs
   ``python -c "import torch, typer, rich"`` (target: <= 1.2x): the median of N
   alternating runs of each. For context, the same baseline plus ``typer._adapters``:
   typer 0.29 imports pydantic to parse any option of any command.
2. cnnscope vs fvcore's FlopCountAnalysis on resnet152 at 224x224, in-process, after
   imports (target: >= 20x faster). fvcore is given a built model, so is cnnscope (its
   meta model); the end-to-end figure (build from the name, then trace) is shown too.
   Each timed trace starts from an empty layer memo (clear_memo), as a first trace does.
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
    table = [py, "-m", "cnnscope", "params", "resnet152"]
    as_json = table + ["--format", "json"]
    base = [py, "-c", "import torch, typer, rich"]
    parse = [py, "-c", "import torch, typer, rich, typer._adapters"]
    # cnnscope exits with os._exit after its output (atexit handlers run, streams are
    # flushed), skipping the interpreter's teardown of torch; the baseline pays it. For a
    # like-for-like view, the same baseline with the same exit:
    quick = [py, "-c", "import torch, typer, rich, atexit, os; atexit._run_exitfuncs(); os._exit(0)"]
    commands = {"table": table, "json": as_json, "base": base, "parse": parse, "quick": quick}
    for cmd in commands.values():
        wall(cmd)  # warm the file cache
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(args.repeats):  # alternate so drift hits all equally
        for key, cmd in commands.items():
            times[key].append(wall(cmd))
    med = {k: statistics.median(v) for k, v in times.items()}

    import torch
    from fvcore.nn import FlopCountAnalysis

    import cnnscope
    from cnnscope.zoo import get_model, list_models

    from cnnscope.trace.meta import building_on
    from cnnscope.trace.tracer import clear_memo, trace_module

    cnnscope.analyze("resnet152")  # first-call warm-up (lazy imports in torch)
    with building_on("meta"):
        meta_model = get_model("resnet152")
    model = get_model("resnet152").eval()  # the CPU model fvcore gets
    ours, end_to_end, same_object = [], [], []
    for _ in range(args.repeats):
        clear_memo()  # a first trace: no layer known from an earlier one
        t = time.perf_counter()
        trace_module(meta_model, (3, 224, 224))
        ours.append(time.perf_counter() - t)
        clear_memo()
        t = time.perf_counter()
        cnnscope.analyze("resnet152")
        end_to_end.append(time.perf_counter() - t)
        clear_memo()
        t = time.perf_counter()
        cnnscope.analyze(model)  # meta stand-ins swapped into the CPU model, then back
        same_object.append(time.perf_counter() - t)
    x = torch.zeros(1, 3, 224, 224)
    theirs = []
    for _ in range(max(1, args.repeats // 2)):
        t = time.perf_counter()
        fca = FlopCountAnalysis(model, x)
        fca.unsupported_ops_warnings(False)
        fca.total()
        theirs.append(time.perf_counter() - t)
    speed = (statistics.median(ours), statistics.median(theirs), statistics.median(end_to_end),
             statistics.median(same_object))

    small = peak_rss_mib(["cnnscope", "params", "resnet152", "--format", "json", "-o", "/dev/null"])
    large = peak_rss_mib(["cnnscope", "params", "resnet152", "--input", "3x1024x1024", "--batch", "64",
                          "--format", "json", "-o", "/dev/null"])

    names = list_models()
    # A fresh process per pass: the first model of each kind pays torch's first-use costs.
    zoo_code = ("import time, cnnscope\nfrom cnnscope.zoo import list_models\n"
                "t = time.perf_counter()\nfor n in list_models():\n    cnnscope.analyze(n)\n"
                "print(time.perf_counter() - t)")
    zoo = statistics.median(
        float(subprocess.run([py, "-c", zoo_code], check=True, capture_output=True,
                             text=True).stdout.split()[-1])
        for _ in range(max(1, args.repeats // 2 + 1)))

    lines = [
        "# Tracing benchmark",
        "",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"{resource.getpagesize() and ''}{__import__('os').cpu_count()} cores; Python "
        f"{platform.python_version()}, torch {torch.__version__}. Medians of {args.repeats} runs.",
        "",
        "| measurement | cnnscope | reference | ratio | target |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| `cnnscope params resnet152` (table) vs `python -c 'import torch, typer, rich'` (wall) | "
        f"{med['table']:.2f} s | {med['base']:.2f} s | {med['table'] / med['base']:.2f}x | <= 1.2x |",
        f"| `cnnscope params resnet152 --format json` vs the same | "
        f"{med['json']:.2f} s | {med['base']:.2f} s | {med['json'] / med['base']:.2f}x | <= 1.2x |",
        f"| like for like: `cnnscope params resnet152` (table) vs the baseline exiting as cnnscope "
        f"does (os._exit, no teardown) | {med['table']:.2f} s | {med['quick']:.2f} s | "
        f"{med['table'] / med['quick']:.2f}x | |",
        f"| context: the baseline plus typer's option parsing (`import typer._adapters`: pydantic) | "
        f"{med['parse']:.2f} s | {med['base']:.2f} s | {med['parse'] / med['base']:.2f}x | |",
        f"| trace of a built resnet152 (meta) vs fvcore FlopCountAnalysis of a built resnet152, "
        f"224x224 | {speed[0] * 1000:.0f} ms | {speed[1] * 1000:.0f} ms | "
        f"{speed[1] / speed[0]:.0f}x faster | >= 20x |",
        f"| analyze(model) on the very CPU model fvcore traces vs the same fvcore figure | "
        f"{speed[3] * 1000:.0f} ms | {speed[1] * 1000:.0f} ms | {speed[1] / speed[3]:.0f}x faster | |",
        f"| analyze('resnet152') end to end (build on meta + trace) vs the same fvcore figure | "
        f"{speed[2] * 1000:.0f} ms | {speed[1] * 1000:.0f} ms | {speed[1] / speed[2]:.0f}x faster | |",
        f"| peak RSS, resnet152 3x1024x1024 batch 64 vs 3x224x224 batch 1 | {large:.0f} MiB | "
        f"{small:.0f} MiB | {large / small:.2f}x | ~1x (meta) |",
        f"| trace all {len(names)} zoo models at default input, one fresh process (after imports) | "
        f"{zoo:.2f} s | | | < 5 s |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
