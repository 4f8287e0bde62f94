"""benchmarks/bench_vs_timm.py runs (on the CPU, a tiny model, a few steps)."""

import importlib.util
import os
import subprocess
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


PLUMBING = {"DEVICE": "cpu", "MODELS": "lenet5", "BATCHES": "1", "BATCH": "2", "LAYER_BATCH": "2",
            "TIMM_ITERS": "2", "DTYPES": "bf16", "MODES": "train", "TESTS": "tests/bench/test_runner_cuda.py",
            "MEMORY_MODELS": "lenet5", "MEMORY_BATCH": "2", "TIMING": "--iters 2 --warmup 1",
            "BENCH_ARGS": "--no-ceiling --max-warmup 1 --threads 1",
            "TIMM_ARGS": "--num-warm-iter 1 --max-warmup 1",
            # one torch thread: a second OpenMP worker mostly spins on a busy 2-core machine
            "OMP_NUM_THREADS": "1"}


# The plumbing run starts ~9 Python processes (preflight, env, two pytest runs, the timm
# comparison, two bench runs, the Markdown rendering, memory_check), each paying its own
# `import torch` (~2 CPU s each; the test cost ~30 CPU s). Its $PYTHON is the stand-in of a
# warm interpreter (tests/warm.py) started with the plumbing's environment: the script and
# its shell plumbing (timeouts, tee, logs, exit codes) run for real, each step's command
# in a process of its own with the step's argv, cwd, environment and standard streams,
# its exit code returned; the steps that train find torch's modules for it preloaded
# (tests/warm.py, "preload"). The slow DDP test below keeps a plain interpreter for every step.
def warm_plumbing():
    from tests.warm import TRAINING_IMPORTS, warm_python

    return warm_python(env={**os.environ, **PLUMBING, "PYTHONPATH": str(SCRIPT.parents[1])},
                       preload=TRAINING_IMPORTS)


# What the commands' teardown would add is not under test here: the plumbing is.
def run_warm_gpu_session(tmp_path, **extra):
    from tests.warm import QUICK_EXIT

    with warm_plumbing() as warm:
        return run_gpu_session(tmp_path, python=warm.executable, **{QUICK_EXIT: "1"}, **extra)


def run_gpu_session(tmp_path, python=sys.executable, **extra):
    script = SCRIPT.parent / "gpu_session.sh"
    if not os.access(script, os.X_OK):
        pytest.fail(f"{script} is not executable")
    env = {**os.environ, **PLUMBING, **extra, "OUT": str(tmp_path),
           "PYTHON": python}  # by default the interpreter running the tests
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=600,
                          cwd=SCRIPT.parents[1])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "== 0 step(s) failed" in done.stdout
    return done


def test_gpu_session_script_runs_every_step_on_the_cpu(tmp_path):
    """benchmarks/gpu_session.sh, the one command for a GPU session, checked for its
    plumbing in the default run (DEVICE=cpu, a tiny model, two iterations per row): every
    step runs and leaves its figures in the one folder. DDP: the slow test below."""
    done = run_warm_gpu_session(tmp_path, DDP_RANKS="0")
    for name in ("preflight.log", "env.log", "cuda_tests.log", "bench_vs_timm.md",
                 "bench_cuda.json", "bench_cuda.md", "per_layer_cuda.json", "memory_cpu.md",
                 "ddp_tests.log"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "| `lenet5` | 2 | bf16 | train |" in (tmp_path / "bench_vs_timm.md").read_text()
    assert "`lenet5`" in (tmp_path / "bench_cuda.md").read_text()
    assert "| `lenet5` | 2x1x32x32 |" in (tmp_path / "memory_cpu.md").read_text()
    assert "(timeout " in done.stdout  # every step ran under a timeout


def test_gpu_session_preflight_stops_a_session_that_cannot_run(tmp_path):
    env = {**os.environ, **PLUMBING, "OUT": str(tmp_path), "PYTHON": "/nonexistent/python3"}
    done = subprocess.run([str(SCRIPT.parent / "gpu_session.sh")], env=env, capture_output=True,
                          text=True, timeout=60, cwd=SCRIPT.parents[1])
    assert done.returncode == 1 and "preflight failed: nothing else run" in done.stdout
    assert not (tmp_path / "env.log").exists()


def test_gpu_session_skips_steps_past_its_budget(tmp_path):
    # With no time left no step starts, so the only command $PYTHON runs is the preflight:
    # `true` passes it without an `import torch` (the run above passes the real preflight).
    env = {**os.environ, **PLUMBING, "OUT": str(tmp_path), "PYTHON": "true",
           "SESSION_S": "0"}
    done = subprocess.run([str(SCRIPT.parent / "gpu_session.sh")], env=env, capture_output=True,
                          text=True, timeout=120, cwd=SCRIPT.parents[1])
    assert "skipped: the session budget" in done.stdout and done.returncode >= 8


@pytest.mark.slow
def test_gpu_session_script_with_its_ddp_step_on_the_cpu(tmp_path):
    run_gpu_session(tmp_path, DDP_RANKS="1")
    assert (tmp_path / "ddp_cpu.json").stat().st_size > 0


def test_the_method_run_first_alternates_row_by_row(monkeypatch):
    """Whichever runs second inherits a hotter GPU and cuDNN's autotune cache."""
    mod = load()
    import torch

    calls = []
    monkeypatch.setattr(mod, "timm_method", lambda *a, **k: calls.append("timm") or
                        {"samples_per_sec": 1.0, "step_time_ms": 1.0})

    class Row:
        ok, throughput = True, 1.0

    monkeypatch.setattr(mod, "bench_row", lambda *a, **k: calls.append("cnnscope") or Row())
    out = mod.compare(["lenet5"], [1, 2, 3], ["fp32"], ["infer"], torch.device("cpu"),
                      channels_last=False, num_warm_iter=1, num_bench_iter=1, iters=1,
                      min_time=0.1, warmup=0)
    assert calls == ["timm", "cnnscope", "cnnscope", "timm", "timm", "cnnscope"]
    assert [r["first"] for r in out] == ["timm", "cnnscope", "timm"]
