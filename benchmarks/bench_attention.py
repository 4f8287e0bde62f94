#!/usr/bin/env python3
"""Counting a built transformer (and a CNN for reference): cnnscope next to its peers.

Same process, same built CPU model, same 1x3x224x224 input; each tool's call is timed
end to end (what a user waits for), medians of ``--repeats`` rounds in which the tools
alternate. Peers (install them into the extended environment, never cnnscope's own):

- ptflops ``get_model_complexity_info(..., backend="aten")`` (its dispatch-based counter)
  and ``backend="pytorch"`` (module hooks);
- calflops ``calculate_flops`` (module hooks + patched functionals);
- fvcore ``FlopCountAnalysis(...).total()`` (a TorchScript trace).

cnnscope: ``cnnscope.analyze(model)`` on the CPU model: meta stand-ins are swapped in for
its weights and it is traced on the meta device. ``--cold`` empties cnnscope's layer memo
before every call, as for the first model a process sees.

    .venv-ext/bin/python benchmarks/bench_attention.py --repeats 7 --markdown reports/bench_attention.md
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = ["timm:vit_tiny_patch16_224", "timm:deit_small_patch16_224",
          "timm:swin_tiny_patch4_window7_224", "torchvision:vit_b_16", "torchvision:resnet50"]


def build(spec):
    import torch

    torch.manual_seed(0)
    lib, name = spec.split(":")
    if lib == "timm":
        import timm

        return timm.create_model(name, pretrained=False).eval()
    import torchvision

    return torchvision.models.get_model(name, weights=None).eval()


def tools(cold: bool):
    import torch

    import cnnscope
    from cnnscope.trace.tracer import clear_memo

    def run_cnnscope(model, x):
        if cold:
            clear_memo()
        return cnnscope.analyze(model, tuple(x.shape[1:])).totals.macs

    out = {"cnnscope": run_cnnscope}
    try:
        from ptflops import get_model_complexity_info

        def ptflops_backend(backend):
            def run(model, x):
                with contextlib.redirect_stdout(io.StringIO()):
                    macs, _ = get_model_complexity_info(
                        model, tuple(x.shape[1:]), as_strings=False, backend=backend,
                        print_per_layer_stat=False, verbose=False)
                return int(macs)
            return run

        out["ptflops (aten)"] = ptflops_backend("aten")
        out["ptflops (pytorch)"] = ptflops_backend("pytorch")
    except ImportError:
        pass
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from calflops import calculate_flops

        def run_calflops(model, x):
            with contextlib.redirect_stdout(io.StringIO()):
                _, macs, _ = calculate_flops(model=model, input_shape=tuple(x.shape),
                                             output_as_string=False, print_results=False,
                                             print_detailed=False)
            return int(macs)

        out["calflops"] = run_calflops
    except ImportError:
        pass
    try:
        from fvcore.nn import FlopCountAnalysis

        def run_fvcore(model, x):
            a = FlopCountAnalysis(model, x)
            a.unsupported_ops_warnings(False)
            a.uncalled_modules_warnings(False)
            with torch.no_grad():
                return int(a.total())

        out["fvcore"] = run_fvcore
    except ImportError:
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cold", action="store_true", help="empty cnnscope's layer memo before each call")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads for the run (0: torch's default)")
    ap.add_argument("--markdown", help="also write the table to this file")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    runners = tools(args.cold)
    rows = []
    for spec in args.models.split(","):
        model = build(spec)
        x = torch.randn(1, 3, 224, 224)
        macs = {}
        for name, fn in runners.items():  # warm-up: imports, first-call caches
            try:
                macs[name] = fn(model, x)
            except Exception as exc:  # noqa: BLE001 - a peer that cannot count this model
                macs[name] = f"failed: {type(exc).__name__}"
        times: dict[str, list[float]] = {n: [] for n in runners if isinstance(macs[n], int)}
        for _ in range(args.repeats):
            for name in times:
                t = time.perf_counter()
                runners[name](model, x)
                times[name].append(time.perf_counter() - t)
        med = {n: statistics.median(v) * 1e3 for n, v in times.items()}
        peers = {n: v for n, v in med.items() if n != "cnnscope"}
        fastest = min(peers, key=peers.get) if peers else None
        rows.append((spec, med, macs, fastest))
        print(f"{spec}: " + ", ".join(f"{n} {v:.1f} ms" for n, v in med.items())
              + (f"; fastest peer {fastest}: {peers[fastest] / med['cnnscope']:.1f}x" if fastest else ""),
              flush=True)

    names = list(runners)
    head = ["model"] + [f"{n} ms" for n in names] + ["fastest peer / cnnscope"]
    lines = [
        f"Machine: {platform.machine()}, {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; medians of {args.repeats} alternating rounds"
        f"{' (cnnscope memo emptied before each call)' if args.cold else ''}.",
        "",
        "| " + " | ".join(head) + " |",
        "| --- | " + " | ".join("---:" for _ in head[1:]) + " |",
    ]
    for spec, med, macs, fastest in rows:
        cells = [f"{med[n]:.1f}" if n in med else str(macs[n]) for n in names]
        ratio = f"{med[fastest] / med['cnnscope']:.1f}x ({fastest})" if fastest else ""
        lines.append(f"| `{spec}` | " + " | ".join(cells) + f" | {ratio} |")
    lines += ["", "MACs each tool reports (its own convention):", "",
              "| model | " + " | ".join(names) + " |",
              "| --- | " + " | ".join("---:" for _ in names) + " |"]
    for spec, _, macs, _ in rows:
        lines.append(f"| `{spec}` | " + " | ".join(
            f"{macs[n]:,}" if isinstance(macs[n], int) else macs[n] for n in names) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
