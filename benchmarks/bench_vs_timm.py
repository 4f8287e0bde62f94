#!/usr/bin/env python3
"""cnnscope bench next to timm's benchmark.py method: same model, settings and session.

timm is not a dependency of cnnscope, so its method is re-implemented here, step for step,
from its ``benchmark.py`` (huggingface/pytorch-image-models, read at commits
066e490605ba1d3666861096163246c885603469 and 6c376d81397976c0560049aca2037abdc4475351;
``BenchmarkRunner``, ``InferenceBenchmarkRunner.run``, ``TrainBenchmarkRunner.run``,
``cuda_timestamp``):

- ``torch.backends.cudnn.benchmark = True`` (set at import in benchmark.py);
- the model moved to the device (and ``channels_last`` memory format), input
  ``torch.randn((batch,) + input_size)`` made contiguous in that format;
- ``--num-warm-iter`` (default 10) untimed steps, then ``--num-bench-iter`` (default 40)
  timed steps;
- clock: ``time.perf_counter()``; ``cuda_timestamp(sync=True)`` calls
  ``torch.cuda.synchronize()`` before reading it, which each step does at its end;
- inference step: ``model(x)`` under ``torch.no_grad()`` and the AMP context;
- train step: ``optimizer.zero_grad()`` (untimed), then, timed: forward, a target
  ``torch.empty(..., dtype=long).random_(num_classes)``, ``CrossEntropyLoss(...).backward()``
  (inside the autocast block, as timm does), ``optimizer.step()`` (timm's
  ``create_optimizer_v2("sgd")``: SGD, momentum 0.9, Nesterov), then synchronize;
- reported figure: ``samples_per_sec = num_samples / t_run_elapsed``, the wall clock of
  the whole timed loop.

Precision: cnnscope's bf16/fp16 are autocast (float32 weights), which is timm's
``--amp --amp-dtype bfloat16|float16``; timm's ``--precision bfloat16`` (a model cast to
bf16) is a different experiment and is not what this compares. Both methods run inside
the same ``fp32_math`` setting (cnnscope's fp32 = TF32 off for matmuls and cuDNN
convolutions). Run timm's own script with default flags and its "float32" convolutions
use TF32 (PyTorch's default for cuDNN); compare that with ``--dtype tf32``.

Usage (on a GPU machine):
    python benchmarks/bench_vs_timm.py --device cuda --models resnet50 --batch 128 \
        --dtype fp32,bf16 --mode infer,train --channels-last -o reports/bench_vs_timm.md
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnscope.api import bench_row  # noqa: E402
from cnnscope.benchmark.env import collect_env  # noqa: E402
from cnnscope.benchmark.precision import autocast, fp32_math  # noqa: E402
from cnnscope.benchmark.runner import BenchSettings  # noqa: E402
from cnnscope.models import resolve  # noqa: E402


def timm_method(name: str, batch: int, dtype: str, mode: str, device: torch.device, *,
                channels_last: bool, num_warm_iter: int = 10, num_bench_iter: int = 40) -> dict:
    """timm benchmark.py's measurement of one (model, batch, dtype, mode): samples/s, ms/step."""
    source = resolve(name)
    input_size = tuple(source.input_size)
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    try:
        model = source.build(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)

        def time_fn(sync: bool = False) -> float:  # timm's cuda_timestamp / timestamp
            if sync and device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter()

        x = torch.randn((batch,) + input_size, device=device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        amp = (lambda: autocast(device, dtype)) if dtype in ("bf16", "fp16") else nullcontext

        with fp32_math(device, dtype):
            if mode == "infer":
                model.eval()

                def _step() -> float:
                    t0 = time_fn()
                    with amp():
                        model(x)
                    return time_fn(True) - t0

                with torch.no_grad():
                    for _ in range(num_warm_iter):
                        _step()
                    total_step, num_samples = 0.0, 0
                    t_run_start = time_fn()
                    for _ in range(num_bench_iter):
                        total_step += _step()
                        num_samples += batch
                    t_run_elapsed = time_fn(True) - t_run_start
            else:
                model.train()
                loss = nn.CrossEntropyLoss().to(device)
                optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, nesterov=True)
                num_classes = None

                def _step() -> float:
                    nonlocal num_classes
                    optimizer.zero_grad()
                    t_start = time_fn()
                    with amp():
                        output = model(x)
                        if isinstance(output, tuple):
                            output = output[0]
                        num_classes = num_classes or output.shape[1]
                        target = torch.empty((output.shape[0],), device=device,
                                             dtype=torch.long).random_(num_classes)
                        loss(output, target).backward()
                    optimizer.step()
                    return time_fn(True) - t_start

                for _ in range(num_warm_iter):
                    _step()
                total_step, num_samples = 0.0, 0
                t_run_start = time_fn()
                for _ in range(num_bench_iter):
                    total_step += _step()
                    num_samples += batch
                t_run_elapsed = time_fn() - t_run_start
    finally:
        torch.backends.cudnn.benchmark = saved
    return {"samples_per_sec": num_samples / t_run_elapsed,
            "step_time_ms": 1000 * total_step / num_bench_iter}


def compare(models, batches, dtypes, modes, device: torch.device, *, channels_last: bool,
            num_warm_iter: int, num_bench_iter: int, iters: int | None, min_time: float,
            warmup: int, max_warmup: int = 50) -> list[dict]:
    out = []
    plan = [(name, dtype, mode, batch) for name in models for dtype in dtypes
            for mode in modes for batch in batches]
    for i, (name, dtype, mode, batch) in enumerate(plan):
        # The method that runs second inherits a hotter GPU and cuDNN's autotune cache
        # from the first: alternate which one goes first, row by row.
        def run_timm() -> dict:
            return timm_method(name, batch, dtype, mode, device, channels_last=channels_last,
                               num_warm_iter=num_warm_iter, num_bench_iter=num_bench_iter)

        def run_ours():
            return bench_row(name, batch, dtype, mode, BenchSettings(
                device=str(device), channels_last=channels_last, iters=iters,
                min_time=min_time, warmup=warmup, max_warmup=max_warmup, ceiling=False))

        first = "timm" if i % 2 == 0 else "cnnscope"
        if first == "timm":
            timm = run_timm()
            _between(device)
            row = run_ours()
        else:
            row = run_ours()
            _between(device)
            timm = run_timm()
        _between(device)
        out.append({"model": name, "batch": batch, "dtype": dtype, "mode": mode,
                    "timm": timm, "cnnscope": row, "first": first})
        ours = f"{row.throughput:,.1f}" if row.ok else row.status
        print(f"{name} b{batch} {dtype} {mode}: cnnscope {ours} img/s, "
              f"timm method {timm['samples_per_sec']:,.1f} img/s", file=sys.stderr)
    return out


def _between(device: torch.device) -> None:
    """Return the first method's cached memory before the second one runs."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def to_markdown(results: list[dict], env: dict, args) -> str:
    lines = [f"### cnnscope bench vs timm benchmark.py method on {env['device_name']}", "",
             f"- torch {env['torch']}, CUDA {env.get('cuda_runtime')}, cuDNN {env.get('cudnn')}, "
             f"driver {env.get('driver')}; channels_last={args.channels_last}; "
             f"timm method: {args.num_warm_iter} warm-up + {args.num_bench_iter} timed steps, "
             "synchronize + wall clock; cnnscope: settled warm-up, "
             f"{'CUDA events' if env['device_type'] == 'cuda' else 'perf_counter'}, median. "
             "The method run first alternates row by row (column *first*).",
             "",
             "| model | batch | dtype | mode | cnnscope img/s (median) | cnnscope img/s (sustained) "
             "| timm method img/s | cnnscope / timm | cnnscope ms | timm ms/step | first |",
             "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        row, timm = r["cnnscope"], r["timm"]
        if row.ok:
            ratio = row.throughput / timm["samples_per_sec"]
            lines.append(f"| `{r['model']}` | {r['batch']} | {r['dtype']} | {r['mode']} | "
                         f"{row.throughput:,.1f} | {row.throughput_sustained:,.1f} | "
                         f"{timm['samples_per_sec']:,.1f} | {ratio:.3f} | {row.median_ms:.2f} | "
                         f"{timm['step_time_ms']:.2f} | {r['first']} |")
        else:
            lines.append(f"| `{r['model']}` | {r['batch']} | {r['dtype']} | {r['mode']} | "
                         f"{row.status}: {row.error} | - | {timm['samples_per_sec']:,.1f} | - | - | "
                         f"{timm['step_time_ms']:.2f} | {r['first']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--models", default="resnet50")
    ap.add_argument("--batch", default="128")
    ap.add_argument("--dtype", default="fp32,bf16")
    ap.add_argument("--mode", default="infer,train")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--num-warm-iter", type=int, default=10, help="timm's default: 10")
    ap.add_argument("--num-bench-iter", type=int, default=40, help="timm's default: 40")
    ap.add_argument("--iters", type=int, default=None, help="cnnscope: timed iterations (default: --min-time)")
    ap.add_argument("--min-time", type=float, default=2.0, help="cnnscope: seconds of timed iterations")
    ap.add_argument("--warmup", type=int, default=5, help="cnnscope: minimum warm-up iterations")
    ap.add_argument("--max-warmup", type=int, default=50, help="cnnscope: most warm-up iterations")
    ap.add_argument("-o", "--output", default=None, help="write the Markdown table here")
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            print("bench_vs_timm: error: CUDA is not available (use --device cpu)", file=sys.stderr)
            return 2
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    split = lambda s: [p.strip() for p in s.split(",") if p.strip()]  # noqa: E731
    results = compare(split(args.models), [int(b) for b in split(args.batch)], split(args.dtype),
                      split(args.mode), device, channels_last=args.channels_last,
                      num_warm_iter=args.num_warm_iter, num_bench_iter=args.num_bench_iter,
                      iters=args.iters, min_time=args.min_time, warmup=args.warmup,
                      max_warmup=args.max_warmup)
    text = to_markdown(results, collect_env(device), args)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
