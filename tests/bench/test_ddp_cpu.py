"""``cnnscope bench --ddp`` on the CPU: gloo, 2 real processes, a small model, few steps.

Each launch runs as a subprocess with a timeout (no test can hang) and its ranks are
found afterwards by a marker in their environment (none may survive). The NCCL path
cannot run here (no GPU); see tests/bench/test_ddp_cuda.py.

The ranks are real processes started the way the launcher starts them (multiprocessing's
spawn, torchrun's subprocesses), with the warm interpreter's stand-in as their Python
(``warm_python``, tests/warm.py): each is a fork that skips ``import torch`` (~1.5 CPU s a
rank). A rank's stand-in carries the marker and lives exactly as long as its rank, so
``survivors`` still sees a rank that outlives the launch.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

FAST = ["--device", "cpu", "--iters", "3", "--warmup", "1", "--max-warmup", "1", "--no-ceiling",
        "--no-progress"]
LAUNCH_TIMEOUT_S = 240  # generous for 2 shared cores; a healthy launch takes ~6 s


@pytest.fixture(scope="module")
def warm_python():
    """This file's own warm interpreter: conftest's ``warm_python``, with what every rank
    imports at its first training step imported once (tests/warm.py, ``preload``)."""
    from tests.warm import TRAINING_IMPORTS, warm_python as start

    with start(preload=TRAINING_IMPORTS) as warm:
        yield warm.executable


def cnnscope(python, *args, tmp_path, extra_env=None, launcher=("-m", "cnnscope")):
    """Run cnnscope in a process of its own, its ranks with the same ``python``; returns
    (CompletedProcess, marker)."""
    from tests.warm import FOR_CHILDREN

    marker = uuid.uuid4().hex
    env = dict(os.environ, CNNSCOPE_CACHE_DIR=str(tmp_path / "cache"), CNNSCOPE_TEST_MARKER=marker,
               TMPDIR=str(tmp_path),  # rank logs of a failed launch stay in the test's folder
               **{FOR_CHILDREN: "1"})
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        env.pop(key, None)
    env.update(extra_env or {})
    done = subprocess.run([python, *launcher, *args], capture_output=True, text=True,
                          timeout=LAUNCH_TIMEOUT_S, env=env, cwd=tmp_path)
    return done, marker


def cnnscope_here(run, *args, python, tmp_path, monkeypatch, quick_exit=False):
    """Run cnnscope in this process (the ``run`` fixture): the launcher, the agent and the
    checks run here, the ranks are real processes as ever, started with ``python``; this
    saves the CLI process's own start-up (``import torch`` and more, ~2.5 CPU s a launch).
    Returns (result, marker). ``quick_exit``: the ranks skip the interpreter's teardown
    (tests/warm.py's QUICK_EXIT) where how they end is not under test (a run that works).
    The tests that need the CLI as a process of its own (a signal, torchrun, the entry
    point's ``__main__`` guard under spawn) use ``cnnscope`` above."""
    from multiprocessing import resource_tracker

    # multiprocessing's resource tracker is this process's helper, started by its first
    # spawn with the environment of the moment, and lives as long as this process: started
    # before the marker is set, it does not carry it.
    resource_tracker.ensure_running()
    marker = uuid.uuid4().hex
    import multiprocessing.spawn

    # the ranks' Python (set_executable's own form; monkeypatch puts the old one back)
    monkeypatch.setattr(multiprocessing.spawn, "_python_exe", os.fsencode(python))
    if quick_exit:
        from tests.warm import QUICK_EXIT

        monkeypatch.setenv(QUICK_EXIT, "1")
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CNNSCOPE_TEST_MARKER", marker)  # inherited by the spawned ranks
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # the failed launch's rank logs
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return run(*args), marker


def survivors(marker: str, grace_s: float = 10.0) -> list[str]:
    """Command lines of processes whose environment carries ``marker`` and that are still
    alive ``grace_s`` after the command returned (helpers such as multiprocessing's
    resource tracker exit a moment after their parent: they get the grace period)."""
    deadline = time.monotonic() + grace_s
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200])
            except OSError:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def lenet5_trainable_params() -> int:
    from cnnscope.models import resolve

    model = resolve("lenet5").build("cpu")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ddp_two_gloo_ranks_report_measurement_and_prediction(run, tmp_path, monkeypatch, warm_python):
    out = tmp_path / "ddp.json"
    done, marker = cnnscope_here(run, "bench", "lenet5", "--ddp", "2", "--batch", "2", "--bucket-mb",
                                 "0.1", "--format", "json", "-o", str(out), *FAST,
                                 python=warm_python, tmp_path=tmp_path, monkeypatch=monkeypatch,
                                 quick_exit=True)
    assert done.exit_code == 0, done.stderr
    assert survivors(marker) == []
    data = json.loads(out.read_text())
    assert data["env"]["ddp"] == {"world_size": 2, "backend": "gloo", "bucket_cap_mb": 0.1,
                                  "threads_per_rank": max(1, len(os.sched_getaffinity(0)) // 2),
                                  "usable_cores": len(os.sched_getaffinity(0))}
    (row,) = data["rows"]
    d = row["ddp"]
    assert row["status"] == "ok" and row["mode"] == "train" and row["batch"] == 2
    assert row["samples"] == 3
    # Gradient bytes: the model's own trainable parameters x 4 (float32), and DDP's own
    # bucket record agrees; 0.1 MiB buckets split lenet5's 240,000 bytes.
    params = lenet5_trainable_params()
    assert d["trainable_params"] == params
    assert d["allreduce_bytes"] == params * 4
    assert sum(d["bucket_bytes"]) == params * 4
    assert d["buckets"] == len(d["bucket_bytes"]) >= 2
    # Every rank timed; the job's step is the slowest rank's.
    assert len(d["rank_median_ms"]) == 2
    assert row["median_ms"] == max(d["rank_median_ms"])
    assert d["single_median_ms"] > 0 and d["nosync_median_ms"] > 0 and d["allreduce_ms"] > 0
    assert d["scaling_efficiency"] == pytest.approx(d["single_median_ms"] / row["median_ms"])
    assert d["exposed_comm_ms"] == pytest.approx(row["median_ms"] - d["nosync_median_ms"])
    assert row["throughput"] == pytest.approx(2 * 2 / (row["median_ms"] * 1e-3))
    # One TFLOP/s basis with single-device rows: the counted backward (LeNet-5's first
    # layer needs no input gradient, so it is less than the old 2 x forward).
    from cnnscope.api import analyze
    from cnnscope.models import resolve

    counted = analyze(resolve("lenet5"), batch=2, train=True).totals.backward_macs
    assert row["backward_macs"] == counted < 2 * row["macs"]
    assert row["achieved_tflops"] == pytest.approx(
        2 * (row["macs"] + counted) / (row["median_ms"] * 1e-3) / 1e12)
    # Predictions at the measured world size and at 8 and 64, with the measured bandwidth:
    # at p = 2 the formula gives the measured lone all-reduce back.
    preds = {p["world_size"]: p for p in d["predictions"]}
    assert sorted(preds) == [2, 8, 64]
    assert preds[2]["link_gbps"] == pytest.approx(d["bus_gbps"])
    assert preds[2]["allreduce_ms"] == pytest.approx(d["allreduce_ms"])
    assert preds[64]["allreduce_ms"] == pytest.approx(d["allreduce_ms"] * (2 * 63 / 64) / (2 * 1 / 2))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", ["exit", "raise"])
def test_a_rank_that_dies_stops_every_rank_with_one_line(run, one_line_error, tmp_path, monkeypatch,
                                                         warm_python, how):
    crash = "os._exit(7)" if how == "exit" else 'raise RuntimeError("rank one broke")'
    (tmp_path / "crashy.py").write_text(textwrap.dedent(f"""
        import os
        from torch import nn

        def build():
            if os.environ.get("RANK") == "1":
                {crash}
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    """))
    out = tmp_path / "never.json"
    done, marker = cnnscope_here(run, "bench", "crashy.py:build", "--input", "3x8x8", "--ddp", "2",
                                 "--format", "json", "-o", str(out), *FAST,
                                 python=warm_python, tmp_path=tmp_path, monkeypatch=monkeypatch)
    line = one_line_error(done, 1)
    if how == "exit":
        assert "error: rank 1 exited with code 7" in line
    else:  # the exception's own message, after the model loader's wording
        assert "error: rank 1 failed: " in line and "RuntimeError: rank one broke" in line
    assert "all ranks stopped; rank logs in" in line
    assert not out.exists()  # no half-written file
    assert survivors(marker) == []


def test_a_port_in_use_is_a_one_line_error(run, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run("bench", "lenet5", "--ddp", "2", "--ddp-port", str(port), *FAST)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (f"cnnscope: error: port {port} is in use "
                                     "(pick another --ddp-port, or 0 for a free one)")


@pytest.mark.parametrize("args, message", [
    (["--ddp", "0"], "--ddp 0 is not positive"),
    (["--ddp", "2", "--mode", "infer"], "--ddp times training steps"),
    (["--ddp", "2", "--per-layer"], "--per-layer is not supported with --ddp"),
    (["--ddp", "2", "--link-gbps", "0"], "--link-gbps 0.0 is out of range (more than 0"),
    (["--ddp", "2", "--bucket-mb", "-1"], "--bucket-mb -1.0 is out of range (more than 0"),
    (["--ddp", "2", "--predict-world", "8,x"], "world size 'x' is not an integer"),
    (["--shard"], "--shard needs ranks"),
    (["--all", "--ddp", "2", "--shard", "lenet5"], "--all with model names"),
])
def test_bad_distributed_options_fail_before_any_process_starts(run, tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    model = [] if "--all" in args else ["lenet5"]
    result = run("bench", *model, *args, *FAST)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_shard_spreads_rows_over_ranks_and_merges_them_in_plan_order(run, tmp_path, monkeypatch,
                                                                     warm_python):
    done, marker = cnnscope_here(run, "bench", "lenet5", "--ddp", "2", "--shard", "--batch",
                                 "1,2,3", "--format", "json", *FAST,
                                 python=warm_python, tmp_path=tmp_path, monkeypatch=monkeypatch,
                                 quick_exit=True)
    assert done.exit_code == 0, done.stderr
    assert survivors(marker) == []
    data = json.loads(done.stdout)
    assert [(r["batch"], r["mode"], r["status"]) for r in data["rows"]] == [
        (1, "infer", "ok"), (2, "infer", "ok"), (3, "infer", "ok")]
    shard = data["env"]["shard"]
    assert shard["world_size"] == 2 and shard["backend"] == "gloo"
    # Rows 0 and 2 on rank 0, row 1 on rank 1.
    assert [(p["rank"], p["rows"]) for p in shard["ranks"]] == [(0, 2), (1, 1)]
    assert all("ddp" not in r for r in data["rows"])  # single-device rows, not DDP


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_under_torchrun_the_job_is_joined_and_rank0_writes_the_report(tmp_path):
    from tests.warm import QUICK_EXIT, TRAINING_IMPORTS, warm_python

    out = tmp_path / "joined.json"
    # torchrun gives its workers these (where unset): a warm interpreter started with them,
    # so that the workers too are forks rather than fresh interpreters
    torchrun_env = {"OMP_NUM_THREADS": "1", "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1"}
    with warm_python(env={**os.environ, **torchrun_env}, preload=TRAINING_IMPORTS) as warm:
        done, marker = cnnscope(
            warm.executable,
            "--standalone", "--nproc-per-node", "2", "-m", "cnnscope",
            "bench", "lenet5", "--batch", "2", "--format", "json", "-o", str(out), *FAST,
            tmp_path=tmp_path, launcher=("-m", "torch.distributed.run"),
            extra_env={QUICK_EXIT: "1", **torchrun_env})  # how torchrun itself ends is not under test
    assert done.returncode == 0, done.stderr
    assert survivors(marker) == []
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert row["mode"] == "train" and row["ddp"]["world_size"] == 2
    assert row["ddp"]["backend"] == "gloo" and len(row["ddp"]["rank_median_ms"]) == 2
    # Only rank 0 wrote: one "wrote" line, no table on stdout.
    assert done.stderr.count(f"wrote {out}") == 1
    assert done.stdout.strip() == ""


def test_all_runs_every_registered_model(run, tmp_path, monkeypatch):
    """--all takes the zoo's list (cut to two small models here to stay fast; one thread:
    bench's default of one per core mostly spins on a busy 2-core machine)."""
    import cnnscope.zoo

    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def two_models(*args, **kwargs):
        calls.append(args)
        return ["lenet5", "nin"]

    monkeypatch.setattr(cnnscope.zoo, "list_models", two_models)
    result = run("bench", "--all", "--iters", "1", "--warmup", "0",
                 "--max-warmup", "0", "--no-ceiling", "--no-progress",
                 "--device", "cpu", "--format", "json", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert calls == [()]  # the whole zoo: no pattern
    assert [r["model"] for r in json.loads(result.stdout)["rows"]] == ["lenet5", "nin"]


@pytest.mark.slow  # waits out a timeout by design (~25 s on 2 CPUs)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_rank_that_hangs_is_bounded_by_the_collective_timeout(tmp_path, monkeypatch):
    """Rank 1 never reaches DDP's first collective: rank 0's times out (8 s here, 300 s by
    default), fails, and the agent stops rank 1. The API call, as the CLI makes it."""
    from cnnscope.api import run_ddp
    from cnnscope.benchmark import ddp
    from cnnscope.benchmark.runner import BenchSettings
    from cnnscope.errors import DistributedError

    (tmp_path / "stuck.py").write_text(textwrap.dedent("""
        import os, time
        from torch import nn

        def build():
            if os.environ.get("RANK") == "1":
                time.sleep(600)
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    """))
    marker = uuid.uuid4().hex
    monkeypatch.setenv("CNNSCOPE_TEST_MARKER", marker)  # inherited by the spawned ranks
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # the failed launch's rank logs
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    settings = BenchSettings(device="cpu", iters=3, warmup=1, max_warmup=1, ceiling=False,
                             input_size=(3, 8, 8))
    job = ddp.DdpJob(names=(f"{tmp_path / 'stuck.py'}:build",), kwargs=({},), batches=(1,),
                     dtypes=("fp32",), modes=("train",), settings=settings,
                     options=ddp.DdpOptions(nproc=2, timeout_s=8))
    start = time.monotonic()
    with pytest.raises(DistributedError) as err:
        run_ddp(job)
    assert time.monotonic() - start < 120  # 8 s timeout + start-up, never rank 1's 600 s
    assert "Timed out" in str(err.value) and "all ranks stopped" in str(err.value)
    assert err.value.exit_code == 1
    # No rank survives. multiprocessing's resource tracker is this test process's own
    # helper (started by its first spawn; it lives as long as this process).
    assert [c for c in survivors(marker) if "resource_tracker" not in c] == []


def test_the_rank_that_failed_is_named_even_when_the_launcher_saw_only_its_peer(tmp_path):
    """The launcher may report only the rank that lost its peer (the one that failed was
    stopped meanwhile): the failing rank's own error file in the log folder names it."""
    import json
    from types import SimpleNamespace

    from cnnscope.benchmark.ddp import _failure_line

    peer = SimpleNamespace(message={"message": "RuntimeError: [gloo/transport/tcp/pair.cc:537] "
                                               "Read error: Connection reset by peer"},
                           timestamp=1, error_file=None, exitcode=1)
    exc = SimpleNamespace(failures={0: peer})
    own = tmp_path / "run" / "attempt_0" / "1"
    own.mkdir(parents=True)
    (own / "error.json").write_text(json.dumps({"message": {"message": "RuntimeError: rank one broke"}}))
    assert _failure_line(exc, str(tmp_path)) == "rank 1 failed: RuntimeError: rank one broke"
    # Without the log folder, the peer-lost rank is all there is to name.
    assert _failure_line(exc).startswith("rank 0 failed: RuntimeError: [gloo")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_rank_that_exits_0_early_is_named_and_its_logs_kept(one_line_error, tmp_path, warm_python):
    """Issue 21: rank 1 called os._exit(0) and rank 0's "Read error" was blamed."""
    (tmp_path / "quitter.py").write_text(textwrap.dedent("""
        import os
        from torch import nn

        class Quits(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                if os.environ.get("RANK") == "1":
                    os._exit(0)
                return self.fc(x)

        def build():
            return Quits()

        build.input_size = (4,)
    """))
    done, marker = cnnscope(warm_python, "bench", "quitter.py:build", "--ddp", "2", *FAST, tmp_path=tmp_path)
    line = one_line_error(done, 1)
    assert "error: rank 1 left first: its process ended without an error before its work" in line
    logs = [p for p in tmp_path.iterdir() if p.name.startswith("cnnscope-ddp-")]
    assert len(logs) == 1 and str(logs[0]) in line and (logs[0] / "FAILED").exists()
    assert survivors(marker) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigint_during_ddp_is_130_interrupted_with_no_rank_left(tmp_path, warm_python):
    """Issue 21: it read "model code raised KeyboardInterrupt", exit 2. SIGTERM and SIGHUP
    take the same path (128 + their number; tests/bench/test_launcher_env.py)."""
    import signal

    from tests.warm import FOR_CHILDREN

    marker = uuid.uuid4().hex
    env = dict(os.environ, CNNSCOPE_CACHE_DIR=str(tmp_path / "cache"), CNNSCOPE_TEST_MARKER=marker,
               TMPDIR=str(tmp_path), **{FOR_CHILDREN: "1"})
    args = [a for a in FAST if a not in ("--iters", "3")]
    proc = subprocess.Popen([warm_python, "-m", "cnnscope", "bench", "lenet5", "--ddp", "2",
                             *args, "--min-time", "600"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    # The ranks have started once their log folders exist.
    while time.monotonic() < deadline and not list(tmp_path.glob("cnnscope-ddp-*/*/attempt_0/1")):
        time.sleep(0.5)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=LAUNCH_TIMEOUT_S)
    assert proc.returncode == 130, err
    assert err.strip() == "cnnscope: interrupted" and out == ""
    assert survivors(marker) == []
