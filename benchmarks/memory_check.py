#!/usr/bin/env python3
"""``cnnscope memory`` (estimate on meta) against the same step measured on real tensors.

For each (model, input, batch, dtype, optimizer, mode) row:

- **estimate**: ``cnnscope.api.plan_memory`` on the meta device;
- **allocator**: the step on real tensors (``cnnscope.benchmark.step_memory.measure_real``):
  on the CPU, the CPU allocator's allocation/free events recorded by ``torch.profiler``
  (``profile_memory=True``) summed in time order on top of the tensors alive when the
  step starts; on CUDA, ``torch.cuda.max_memory_allocated``;
- **live**: the peak of live tensor storage on the real tensors (the planner's
  definition, on real kernels);
- **torchinfo**: torchinfo 1.8's "Estimated Total Size" (input + "forward/backward pass
  size" + params) of ``summary(model, input_size=(batch, *input), device=...)``, when
  torchinfo is installed (it is not a cnnscope dependency: ``pip install torchinfo``).

Writes a Markdown report (``-o reports/memory.md``) and prints it. Usage:
    python benchmarks/memory_check.py --device cpu -o reports/memory.md
    python benchmarks/memory_check.py --device cuda -o reports/memory_cuda.md   # on a GPU
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from cnnscope.api import plan_memory  # noqa: E402
from cnnscope.benchmark.step_memory import measure_real  # noqa: E402
from cnnscope.models import resolve  # noqa: E402
from cnnscope.units import bytes_h  # noqa: E402

# (model, input or None for its own, batches, extra options)
ROWS = [
    ("resnet18", None, (1, 8, 32), {}),
    ("resnet50", None, (1, 4, 8), {}),
    ("mobilenet_v2", None, (1, 8, 32), {}),
    ("densenet121", None, (1, 4, 8), {}),
    ("unet", (1, 252, 252), (1, 2, 4), {}),
    ("resnet18", None, (8,), {"optimizer": "adam"}),
    ("resnet50", None, (4,), {"optimizer": "adamw"}),
    ("resnet18", None, (8,), {"optimizer": "sgd-nesterov"}),
    ("resnet18", None, (8,), {"dtype": "bf16"}),
    ("resnet50", None, (4,), {"dtype": "bf16"}),
    ("resnet18", None, (8,), {"channels_last": True}),
    ("resnet18", None, (8,), {"inference": True}),
    ("resnet50", None, (8,), {"inference": True}),
]

# Transformers from timm (needs timm: run with an environment that has it), each at two
# batches: F.scaled_dot_product_attention runs the kernel PyTorch picks on the device,
# named in the table.
ATTENTION_ROWS = [
    ("timm:vit_tiny_patch16_224", None, (2, 8), {}),
    ("timm:deit_tiny_patch16_224", None, (2, 4), {"optimizer": "adam"}),
    ("timm:swin_tiny_patch4_window7_224", None, (1, 2), {}),
    ("timm:eva02_tiny_patch14_224", None, (1, 2), {}),
]


def torchinfo_total(net: torch.nn.Module, size, batch: int, device: str) -> int | None:
    """torchinfo's "Estimated Total Size" in bytes; None without torchinfo."""
    try:
        import torchinfo
    except ImportError:
        return None
    stats = torchinfo.summary(net, input_size=(batch, *size), device=device, verbose=0)
    return int(stats.total_input + stats.total_output_bytes + stats.total_param_bytes)


def _timm_version() -> str:
    try:
        import timm
    except ImportError:
        return "timm not installed"
    return f"timm {timm.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads"


def row(name: str, size, b: int, opts: dict, device: str,
        kernel: bool) -> tuple[str, float, str | None]:
    """One Markdown row (estimate, measurement, torchinfo), the estimate's error in %, and
    the library workspaces held at the start of the step (CUDA; None elsewhere)."""
    t0 = time.perf_counter()
    plan = plan_memory(name, size, b, device=device.split(":")[0], **opts)
    t_plan = time.perf_counter() - t0
    src = resolve(name)
    measured = measure_real(src.build(device), plan.input_size, b, device, **opts)
    err = 100 * (plan.peak_bytes / measured.allocator_peak_bytes - 1)
    workspace = None
    if measured.workspace_bytes is not None:
        workspace = (f"`{name}` b{b}: {bytes_h(measured.workspace_bytes)} "
                     f"(raw max_memory_allocated {bytes_h(measured.raw_peak_bytes)})")
    mode = "infer" if opts.get("inference") else plan.optimizer
    flags = " cl" if opts.get("channels_last") else ""
    head = (f"| `{name}` | {b}x{'x'.join(map(str, plan.input_size))} | {plan.dtype}{flags} | "
            f"{mode} | {bytes_h(plan.peak_bytes)} | {bytes_h(measured.allocator_peak_bytes)} | "
            f"{err:+.1f}% | {bytes_h(measured.live_peak_bytes)} |")
    if kernel:
        used = ", ".join(f"{k} x{n}" for k, n in plan.attention) or "-"
        return f"{head} {used} | {t_plan:.1f} s |", err, workspace
    ti = torchinfo_total(resolve(name).build(device), plan.input_size, b, device)
    ti_cells = (f"{bytes_h(ti)} | {100 * (ti / measured.allocator_peak_bytes - 1):+.0f}%"
                if ti is not None else "- | -")
    return f"{head} {ti_cells} | {t_plan:.1f} s |", err, workspace


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default=None, help="comma list: only these models")
    ap.add_argument("--batch", type=int, default=None,
                    help="only this batch (a model not in the table gets one row at it)")
    ap.add_argument("-o", "--output", default=None)
    ap.add_argument("--no-attention", dest="attention", action="store_false",
                    help="leave out the timm transformers (they need timm)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    only = set(args.models.split(",")) if args.models else None
    lines, attention_lines = [], []
    worst = 0.0
    workspaces = []
    extra = [(n, None, (args.batch or 1,), {}) for n in sorted(only or ())
             if n not in {r[0] for r in ROWS + ATTENTION_ROWS}]
    for table, rows in ((lines, list(ROWS) + extra),
                        (attention_lines, ATTENTION_ROWS if args.attention else [])):
        for name, size, batches, opts in rows:
            if only and name not in only:
                continue
            for b in ((args.batch,) if args.batch else batches):
                line, err, workspace = row(name, size, b, opts, args.device,
                                           kernel=table is attention_lines)
                worst = max(worst, abs(err))
                table.append(line)
                print(line, flush=True)
                if workspace:
                    workspaces.append(workspace)
    try:
        import torchinfo
        ti_version = torchinfo.__version__
    except ImportError:
        ti_version = "not installed"
    where = (torch.cuda.get_device_name(0) if args.device.startswith("cuda")
             else f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)")
    head = [
        "# `cnnscope memory`: estimate on meta vs the step measured on real tensors",
        "",
        f"Device: {args.device}, {where}; torch {torch.__version__}; torchinfo {ti_version}.",
        "Generated by `python benchmarks/memory_check.py --device "
        f"{args.device} -o <this file>`.",
        "",
        "- **estimate**: `cnnscope memory` (peak of one steady-state training step, planned on "
        "the meta device; nothing allocated).",
        "- **measured**: the same step on real tensors, the second step (optimizer state "
        "present, gradients released before it). CPU: the allocator's allocation and free "
        "events (`torch.profiler`, `profile_memory=True`) summed in time order, on top of the "
        "tensors alive at the start of the step; CUDA: what `torch.cuda.max_memory_allocated` "
        "rose above `memory_allocated()` at the reset, on top of the same tensors (the raw "
        "peak also holds cuBLAS's workspace and other library workspaces allocated before "
        "the step: listed under the table).",
        "- **error**: estimate / measured - 1.",
        "- **live**: peak of live tensor storage on the real tensors (the estimate's own "
        "definition, on real kernels); the gap to *measured* is memory kernels allocate "
        "without returning a tensor (oneDNN scratch buffers).",
        "- **torchinfo**: torchinfo's \"Estimated Total Size\" (input + \"forward/backward "
        "pass size\" + params) for the same model and batch: the output of every leaf layer "
        "that has parameters twice (its value and its gradient; a ReLU or a pooling counts "
        "nothing), the parameters once; no weight gradients, no optimizer state, and nothing "
        "is ever freed.",
        "",
        "| model | input | dtype | optimizer | estimate | measured | error | live | "
        "torchinfo | torchinfo error | plan time |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    attention = [
        "",
        "## Attention models",
        "",
        "timm transformers, whose attention is `F.scaled_dot_product_attention`. The plan "
        "runs the kernel PyTorch picks on the device (`cnnscope memory --device`; on the CPU "
        "`_scaled_dot_product_flash_attention_for_cpu` where its rules allow, which keeps a "
        "log-sum-exp instead of the attention probabilities, and its per-thread blocks); "
        "**kernel**: the kernels of the step and their calls; \"-\": none, timm's Swin "
        "computes its attention itself (softmax of q @ k^T; its fused path is experimental "
        "and off by default). " + _timm_version() + ".",
        "",
        "| model | input | dtype | optimizer | estimate | measured | error | live | kernel | "
        "plan time |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ] if attention_lines else []
    tail = ["", f"Largest |error| of the estimate: {worst:.1f}%.", ""]
    if workspaces:
        tail[-1:-1] = ["", "Library workspaces held at the start of the step (not in *measured*; "
                       "the planner cannot see them): " + "; ".join(workspaces) + "."]
    text = "\n".join(head + lines + attention + attention_lines + tail)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
