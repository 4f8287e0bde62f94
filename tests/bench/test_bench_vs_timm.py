"""benchmarks/bench_vs_timm.py runs (on the CPU, a tiny model, a few steps)."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_vs_timm.py"


def load():
    spec = importlib.util.spec_from_file_location("bench_vs_timm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_timm_method_reports_samples_per_second():
    mod = load()
    import torch

    for mode in ("infer", "train"):
        r = mod.timm_method("lenet5", 2, "fp32", mode, torch.device("cpu"), channels_last=False,
                            num_warm_iter=1, num_bench_iter=2)
        assert r["samples_per_sec"] > 0 and r["step_time_ms"] > 0


def test_script_writes_the_side_by_side_table(tmp_path, capsys):
    mod = load()
    out = tmp_path / "vs.md"
    rc = mod.main(["--device", "cpu", "--models", "lenet5", "--batch", "1", "--dtype", "fp32",
                   "--mode", "infer", "--num-warm-iter", "1", "--num-bench-iter", "2",
                   "--iters", "2", "--warmup", "1", "-o", str(out)])
    assert rc == 0
    text = out.read_text()
    assert "timm method img/s" in text and "| `lenet5` | 1 | fp32 | infer |" in text


@pytest.mark.slow
def test_gpu_session_script_runs_every_step_on_the_cpu(tmp_path):
    """benchmarks/gpu_session.sh, the one command for a GPU session, checked for its
    plumbing here (DEVICE=cpu, a tiny model): every step runs and leaves its file."""
    import os
    import subprocess

    script = SCRIPT.parent / "gpu_session.sh"
    env = {**os.environ, "DEVICE": "cpu", "MODELS": "lenet5", "BATCHES": "1", "BATCH": "2",
           "OUT": str(tmp_path), "PYTHON": sys.executable}  # the interpreter running the tests
    if not os.access(script, os.X_OK):
        pytest.fail(f"{script} is not executable")
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "== 0 step(s) failed" in done.stdout
    for name in ("env.log", "cuda_tests.log", "bench_vs_timm.md", "bench_cuda.json", "bench_cuda.md"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "| `lenet5` | 2 | bf16 | train |" in (tmp_path / "bench_vs_timm.md").read_text()
    assert "| `lenet5` | 1 | fp32 | infer |" in (tmp_path / "bench_cuda.md").read_text()
