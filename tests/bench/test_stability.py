"""Is a measurement clean? /proc/stat arithmetic, the verdict, adaptive sampling, --strict,
--threads, and the ceiling that a row may not exceed without being measured again."""

import gc
import json

import pytest
import torch
from torch import nn

from cnnscope.api import bench_row, run_sweep
from cnnscope.benchmark import ceiling as ceiling_mod
from cnnscope.benchmark import runner, stability
from cnnscope.benchmark.records import MatmulCeiling
from cnnscope.benchmark.runner import BenchSettings, plan_rows
from cnnscope.benchmark.stability import CpuCounters, Interference, interference, parse_proc_stat
from cnnscope.errors import InvalidOptionError
from cnnscope.models import ModelSource

FAST = ["--device", "cpu", "--iters", "2", "--warmup", "1", "--max-warmup", "1", "--no-ceiling",
        "--no-progress"]
# For the runs whose thread count is not what they test: bench's default is one thread per
# usable core, and on a busy 2-core machine the second OpenMP worker mostly spins.
ONE_THREAD = ["--threads", "1"]

# /proc/stat as the kernel writes it (proc(5)): user nice system idle iowait irq softirq steal
PROC_STAT = """cpu  1000 0 500 8000 0 0 0 100 0 0
cpu0 400 0 200 4000 0 0 0 50 0 0
cpu1 600 0 300 4000 0 0 0 50 0 0
intr 12345
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    ceiling_mod.clear_run_cache()
    yield
    ceiling_mod.clear_run_cache()


def tiny():
    return ModelSource(name="tiny", input_size=(3, 8, 8),
                       builder=lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)))


def test_proc_stat_sums_busy_and_steal_over_the_usable_cpus_only():
    # cpu1: user 600 + system 300 = 900 busy, 50 steal
    assert parse_proc_stat(PROC_STAT, (1,)) == (600 + 300, 50)
    assert parse_proc_stat(PROC_STAT, (0, 1)) == (400 + 200 + 600 + 300, 100)
    # a CPU with no line of its own: the aggregate line, scaled to one of two CPUs
    assert parse_proc_stat(PROC_STAT, (0, 7)) == ((1000 + 500) * 2 / 2, 100 * 2 / 2)
    assert parse_proc_stat("intr 1\n", (0,)) is None


def test_other_processes_share_is_busy_time_less_our_own_over_capacity(monkeypatch):
    monkeypatch.setattr(stability, "load_average", lambda: 3.5)
    # 2 cores for 1 s = 2 core-seconds; 1.6 busy of which 0.4 ours: others took 1.2 = 60 %
    before = CpuCounters(busy_s=10.0, steal_s=1.0, own_s=5.0, wall_s=100.0, cores=2)
    after = CpuCounters(busy_s=11.6, steal_s=1.2, own_s=5.4, wall_s=101.0, cores=2)
    seen = interference(before, after)
    assert seen.other_cpu == pytest.approx((1.6 - 0.4) / (1.0 * 2))
    assert seen.steal == pytest.approx(0.2 / 2)
    assert seen.load_average == 3.5
    assert interference(None, after).other_cpu is None


def test_causes_name_each_reason_and_none_for_a_clean_run():
    clean = Interference(other_cpu=0.02, steal=0.0, load_average=0.3, cores=2)
    assert stability.causes(0.03, clean) == ()
    loaded = Interference(other_cpu=0.6, steal=0.2, load_average=3.9, cores=2)
    why = stability.causes(0.5, loaded)
    assert len(why) == 3
    assert "other processes used 60% of the 2 usable cores, load average 3.9" in why[0]
    assert "steal 20%" in why[1] and "spread (IQR/median) 50% over 10%" in why[2]
    # each threshold is a strict "over"
    edge = Interference(other_cpu=stability.OTHER_CPU_LIMIT, steal=stability.STEAL_LIMIT,
                        load_average=None, cores=2)
    assert stability.causes(stability.SPREAD_LIMIT, edge) == ()


def test_unknown_counters_judge_on_the_spread_alone():
    unknown = Interference(other_cpu=None, steal=None, load_average=None, cores=1)
    assert stability.causes(0.01, unknown) == ()
    assert stability.causes(0.2, unknown) == ("spread (IQR/median) 20% over 10%",)


def test_a_row_records_spread_and_verdict(monkeypatch):
    calm = Interference(other_cpu=0.0, steal=0.0, load_average=0.1, cores=2)
    monkeypatch.setattr(runner.Watch, "stop", lambda self: calm)
    row = bench_row(tiny(), 1, "fp32", "infer", BenchSettings(iters=5, warmup=1, max_warmup=1,
                                                              ceiling=False))
    assert row.ok and row.spread == pytest.approx(
        (row.p75_ms - row.p25_ms) / row.median_ms, abs=1e-4)
    assert row.stable is (row.spread <= stability.SPREAD_LIMIT)
    busy = Interference(other_cpu=0.7, steal=0.0, load_average=4.0, cores=2)
    monkeypatch.setattr(runner.Watch, "stop", lambda self: busy)
    row = bench_row(tiny(), 1, "fp32", "infer", BenchSettings(iters=5, warmup=1, max_warmup=1,
                                                              ceiling=False))
    assert row.stable is False and "other processes used 70%" in row.unstable_causes[0]
    assert row.other_cpu == 0.7 and row.load_average == 4.0


def test_adaptive_sampling_goes_on_while_the_spread_is_high(monkeypatch):
    spreads = iter([0.5, 0.4, 0.05])  # high, high, then under the limit
    monkeypatch.setattr(runner, "_spread", lambda timer, marks: next(spreads))
    # A time budget far past the three checks: only the spreads may end the sampling. With
    # the default (3 x min_time = 30 ms) a loaded machine (a parallel run beside other
    # work) could end it at the budget before the third check, and the test failed.
    s = BenchSettings(min_time=0.01, max_time=60, min_samples=1, warmup=0, max_warmup=0,
                      ceiling=False)
    row = bench_row(tiny(), 1, "fp32", "infer", s)
    assert row.ok
    with pytest.raises(StopIteration):
        next(spreads)  # all three checks were needed: it stopped at the first spread under 10 %


def test_adaptive_sampling_stops_at_the_time_budget(monkeypatch):
    monkeypatch.setattr(runner, "_spread", lambda timer, marks: 1.0)  # never stable
    s = BenchSettings(min_time=0.02, max_time=0.05, min_samples=1, warmup=0, max_warmup=0,
                      ceiling=False)
    import time

    start = time.perf_counter()
    row = bench_row(tiny(), 1, "fp32", "infer", s)
    assert row.ok and time.perf_counter() - start < 5  # the budget ends it, not MAX_SAMPLES


def test_gc_is_off_inside_timed_iterations_only():
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(gc.isenabled())
            return x * 2

    src = ModelSource(name="spy", input_size=(3,), builder=Spy)
    row = bench_row(src, 1, "fp32", "infer", BenchSettings(iters=3, warmup=2, max_warmup=2,
                                                           ceiling=False))
    assert row.ok and gc.isenabled()
    # 1 trace on the meta device? no: the tracer runs its own forward; the last 3 are timed
    assert seen[-3:] == [False, False, False] and True in seen[:-3]


def test_threads_option_sets_torch_threads_for_the_row_and_restores_them():
    before = torch.get_num_threads()
    row = bench_row(tiny(), 1, "fp32", "infer", BenchSettings(iters=2, warmup=0, max_warmup=0,
                                                              ceiling=False, threads=1))
    assert row.threads == 1 and torch.get_num_threads() == before
    with pytest.raises(InvalidOptionError, match="--threads 0 is not between 1 and 4096"):
        BenchSettings(threads=0).check()


def test_default_threads_are_the_affinity_mask():
    import os

    assert stability.default_threads() == len(os.sched_getaffinity(0))


def test_cli_reports_threads_and_strict_exits_1_on_an_unstable_row(run, monkeypatch):
    busy = Interference(other_cpu=0.8, steal=0.0, load_average=4.2, cores=2)
    monkeypatch.setattr(runner.Watch, "stop", lambda self: busy)
    res = run("bench", "lenet5", "--threads", "1", "--format", "json", *FAST)
    assert res.exit_code == 0, res.output  # without --strict an unstable row is reported
    data = json.loads(res.stdout)
    assert data["env"]["torch_threads"] == 1 and data["env"]["threads"] == 1
    row = data["rows"][0]
    assert row["stable"] is False and row["spread"] is not None
    assert row["unstable_causes"][0].startswith("other processes used 80%")
    # Two threads asked for, whatever this machine's affinity mask holds: the hint to use
    # fewer appears only where there are more than one.
    strict = run("bench", "lenet5", "--strict", "--threads", "2", *FAST)
    assert strict.exit_code == 1
    assert "unstable (--strict)" in strict.stderr and "other processes used 80%" in strict.stderr
    assert "unstable" in strict.stdout  # the table still printed, the row marked
    assert "! unstable: lenet5 b1 fp32 infer" in strict.stdout
    assert "fewer threads (--threads 1)" in strict.stdout


def test_strict_passes_a_clean_run(run, monkeypatch):
    calm = Interference(other_cpu=0.0, steal=0.0, load_average=0.1, cores=2)
    monkeypatch.setattr(runner.Watch, "stop", lambda self: calm)
    monkeypatch.setattr(runner, "causes", lambda spread, seen: ())
    res = run("bench", "lenet5", "--strict", *FAST, *ONE_THREAD)
    assert res.exit_code == 0, res.output
    assert "! unstable" not in res.stdout


def test_csv_carries_the_stability_columns(run, monkeypatch):
    import csv
    import io

    busy = Interference(other_cpu=0.8, steal=0.3, load_average=4.2, cores=2)
    monkeypatch.setattr(runner.Watch, "stop", lambda self: busy)
    res = run("bench", "lenet5", "--format", "csv", *FAST, *ONE_THREAD)
    assert res.exit_code == 0, res.output
    row = next(csv.DictReader(io.StringIO(res.stdout)))
    assert row["stable"] == "False" and float(row["spread"]) >= 0
    assert int(row["threads"]) >= 1 and row["other_cpu"] == "0.8" and row["cpu_steal"] == "0.3"
    assert row["unstable_causes"].startswith("other processes used 80% of the 2 usable cores, "
                                             "load average 4.2; CPU steal 30%")


def test_a_ceiling_kept_for_this_run_is_used_and_not_cached(tmp_path, monkeypatch):
    """A DDP rank keeps the ceiling of its share of the CPU for its own sweep: the sweep
    uses it without measuring, and the on-disk cache (whole-machine figures) never sees it."""
    kept = MatmulCeiling(device_name="cpu", dtype="fp32", tflops=2.5, n=256,
                         measured_at="2026-01-01T00:00:00+00:00", torch_version="x")

    def measure(*args, **kwargs):
        raise AssertionError("measured although a ceiling was kept for this run")

    monkeypatch.setattr(ceiling_mod, "measure", measure)
    try:
        ceiling_mod.keep_for_this_run(torch.device("cpu"), "fp32", kept)
        assert ceiling_mod.matmul_ceiling("cpu", "fp32", path=tmp_path / "c.json") is kept
        assert not (tmp_path / "c.json").exists()
    finally:
        ceiling_mod.clear_run_cache()


def test_a_row_above_the_ceiling_measures_it_again(monkeypatch):
    """A ceiling cached from a loaded moment (here planted at 1 MFLOP/s) is re-measured the
    first time a row exceeds it; the row is then judged against the fresh figure."""
    poisoned = MatmulCeiling(device_name="cpu", dtype="fp32", tflops=1e-6, n=512,
                             measured_at="2026-01-01T00:00:00+00:00", torch_version="x",
                             cached=True)
    ceiling_mod._RUN_CACHE[(ceiling_mod.device_key(torch.device("cpu")), "fp32")] = poisoned
    calls = []

    def fresh(device, dtype, sizes=None, **kw):
        calls.append(dtype)
        return ceiling_mod.Measured(tflops=1e6, n=512, spread=0.01, causes=(),
                                    load_average=0.1, other_cpu=0.0)

    monkeypatch.setattr(ceiling_mod, "measure", fresh)
    s = BenchSettings(iters=2, warmup=0, max_warmup=0)
    result = run_sweep(plan_rows([tiny()], [1, 2], ["fp32"], ["infer"]), s)
    assert calls == ["fp32"]  # measured again once, not per row
    assert all(r.ceiling_tflops == 1e6 and r.ceiling_fraction < 1 for r in result.rows)
    assert result.ceilings["fp32"].tflops == 1e6
    assert not any(runner.EXCEEDS_NOTE in r.notes for r in result.rows)


def test_a_row_still_above_a_fresh_ceiling_says_so(monkeypatch):
    monkeypatch.setattr(ceiling_mod, "measure", lambda *a, **k: ceiling_mod.Measured(
        tflops=1e-6, n=512, spread=0.01, causes=(), load_average=0.1, other_cpu=0.0))
    s = BenchSettings(iters=2, warmup=0, max_warmup=0)
    result = run_sweep(plan_rows([tiny()], [1], ["fp32"], ["infer"]), s)
    (row,) = result.rows
    assert row.ceiling_fraction > 1 and runner.EXCEEDS_NOTE in row.notes


# ----------------------------------------------------------------------------- CUDA paths, on the CPU


def test_cuda_step_peak_counts_the_step_not_the_workspaces():
    from cnnscope.benchmark.step_memory import step_peak

    mib = 1 << 20
    # 100 MiB of the step's tensors alive at the reset, plus cuBLAS's 32 MiB workspace;
    # the step rises to 400 MiB allocated in all: it added 268 MiB over the baseline.
    live, baseline, raw = 100 * mib, 100 * mib + 32 * mib, 400 * mib
    assert step_peak(live, baseline, raw) == (100 * mib + (400 - 132) * mib, 32 * mib)
    assert step_peak(live, live, live) == (live, 0)


def test_tf32_flags_keep_conv_and_rnn_consistent():
    """torch raises when the legacy cudnn.allow_tf32 is read while conv and rnn disagree
    (inductor, the profiler or timm read it inside a row)."""
    from cnnscope.benchmark.precision import tf32_flags

    for tf32 in (False, True):
        with tf32_flags(tf32):
            assert torch.backends.cudnn.allow_tf32 is tf32
            assert torch.backends.cuda.matmul.allow_tf32 is tf32


def test_channels_last_leaves_a_non_4d_input_alone():
    src = ModelSource(name="mlp", input_size=(8,), builder=lambda: nn.Linear(8, 2))
    row = bench_row(src, 2, "fp32", "infer", BenchSettings(iters=2, warmup=0, max_warmup=0,
                                                           ceiling=False, channels_last=True))
    assert row.ok, row.error
    assert any("keeps its layout" in n for n in row.notes)


def test_fp16_training_says_it_has_no_grad_scaler():
    row = bench_row(tiny(), 1, "fp16", "train", BenchSettings(iters=2, warmup=0, max_warmup=0,
                                                              ceiling=False))
    assert any("GradScaler" in n for n in row.notes)


def test_a_sticky_error_at_free_memory_keeps_the_sweep_and_its_rows(monkeypatch, tmp_path):
    """free_memory synchronises the device: a sticky CUDA error surfaces there. The row
    stands, the next one fails alone, and the partial file holds what finished."""
    from cnnscope.benchmark import peak_memory

    calls = []

    def sticky(device, failed=True):
        calls.append(failed)
        if len(calls) == 1:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(runner, "free_memory", sticky)
    assert peak_memory.free_memory is not sticky
    seen = []
    s = BenchSettings(iters=2, warmup=0, max_warmup=0, ceiling=False)
    result = run_sweep(plan_rows([tiny()], [1, 2], ["fp32"], ["infer"]), s,
                       on_progress=lambda partial: seen.append(len(partial.rows)))
    assert [r.ok for r in result.rows] == [True, True]
    assert "illegal memory access" in result.rows[0].notes[-1]
    assert seen == [1, 2]


def test_a_row_that_raises_outside_its_guard_becomes_an_error_row(monkeypatch):
    real = runner.bench_row
    count = []

    def flaky(*a, **k):
        count.append(1)
        if len(count) == 1:
            raise RuntimeError("CUDA error: unspecified launch failure")
        return real(*a, **k)

    monkeypatch.setattr(runner, "bench_row", flaky)
    s = BenchSettings(iters=2, warmup=0, max_warmup=0, ceiling=False)
    result = run_sweep(plan_rows([tiny()], [1, 2], ["fp32"], ["infer"]), s)
    assert [r.status for r in result.rows] == ["error", "ok"]
    assert "unspecified launch failure" in result.rows[0].error


def test_cli_json_file_is_written_as_rows_finish(run, monkeypatch, tmp_path):
    out = tmp_path / "sweep.json"
    sizes = []
    real = runner.bench_row

    def spy(*a, **k):
        if out.exists():
            sizes.append(len(json.loads(out.read_text())["rows"]))
        return real(*a, **k)

    monkeypatch.setattr(runner, "bench_row", spy)
    res = run("bench", "lenet5", "--batch", "1,2,3", "-o", str(out), *FAST, *ONE_THREAD)
    assert res.exit_code == 0, res.output
    assert sizes == [1, 2]  # before rows 2 and 3, the file held the rows already done
    assert len(json.loads(out.read_text())["rows"]) == 3


def test_each_compiled_row_starts_from_a_fresh_dynamo_cache(monkeypatch):
    import torch._dynamo as dynamo

    from cnnscope.benchmark import workload

    monkeypatch.setattr(workload, "COMPILE_BACKEND", "eager")  # dynamo without inductor
    resets = []
    real_reset = dynamo.reset
    monkeypatch.setattr(dynamo, "reset", lambda: (resets.append(1), real_reset()))
    s = BenchSettings(iters=2, warmup=1, max_warmup=1, ceiling=False, compile=True)
    result = run_sweep(plan_rows([tiny()], [1, 2], ["fp32"], ["infer"]), s)
    assert len(resets) == 2
    assert all(r.ok and r.compiled and r.ran_eager is False for r in result.rows), \
        [r.error for r in result.rows]


def test_a_compiled_row_that_compiled_nothing_says_it_ran_eager(monkeypatch):
    import torch._dynamo as dynamo

    from cnnscope.benchmark import workload

    monkeypatch.setattr(workload, "COMPILE_BACKEND", "eager")

    @dynamo.disable
    def opaque(x):
        return x * 2

    class Opaque(nn.Module):
        def forward(self, x):
            return opaque(x)

    src = ModelSource(name="opaque", input_size=(4,), builder=Opaque)
    row = bench_row(src, 1, "fp32", "infer", BenchSettings(iters=2, warmup=1, max_warmup=1,
                                                           ceiling=False, compile=True))
    assert row.ok and row.ran_eager is True
    assert any("ran eager" in n for n in row.notes)


def test_peak_memory_is_reset_before_a_cuda_graph_capture(monkeypatch):
    """The graph's private pool holds the activations from the capture on: the peak must
    include it (reset first, then capture)."""
    from types import SimpleNamespace

    from cnnscope.benchmark import workload

    order = []
    monkeypatch.setattr(BenchSettings, "check", lambda self: torch.device("cpu"))
    monkeypatch.setattr(runner.PeakMemory, "reset", lambda self: order.append("reset"))

    def capture(self):
        order.append("capture")
        self.graph = SimpleNamespace(replay=lambda: None)
        self.phases = ("graph",)

    monkeypatch.setattr(workload.Workload, "capture", capture)
    row = bench_row(tiny(), 1, "fp32", "infer", BenchSettings(iters=2, warmup=0, max_warmup=0,
                                                              ceiling=False, cuda_graphs=True))
    assert row.ok, row.error
    assert order == ["reset", "capture"]


def test_ceiling_is_the_median_after_a_warm_up(monkeypatch):
    """A cold first call and a lone fast burst must not set the ceiling: the median does."""
    times = iter([50.0] + [10.0] * 3 + [1.0] + [10.0] * 1000)  # ms per product

    class FakeTimer:
        def mark(self):
            return None

        def sync(self):
            return None

        def elapsed_ms(self, a, b):
            return next(times)

    monkeypatch.setattr(ceiling_mod, "timer_for", lambda device: FakeTimer())
    monkeypatch.setattr(ceiling_mod, "WARMUP_S", 0.0)  # warm-up: one untimed call
    monkeypatch.setattr(ceiling_mod, "SAMPLE_S", 0.0)
    m = ceiling_mod.measure(torch.device("cpu"), "fp32", sizes=(64,))
    # samples 50, 10, 10, 10, 1 -> median 10 ms (min would give 1 ms, 10x the rate)
    assert m.tflops == pytest.approx(2 * 64 ** 3 / (10e-3) / 1e12)


def test_gpu_state_parses_nvidia_smi():
    from cnnscope.benchmark.env import parse_compute_apps, parse_gpu_query

    got = parse_gpu_query("1980, 1980, 2619, 312.45, 700.00, 41, P0\n")
    assert got["gpu_clocks_sm"] == 1980 and got["gpu_power_draw"] == 312.45
    assert got["gpu_temperature_gpu"] == 41 and got["gpu_pstate"] == "P0"
    assert parse_gpu_query("[N/A], 1980, 2619, [N/A], 700, 41, P0")["gpu_clocks_sm"] is None
    apps = parse_compute_apps("123, 500\n456, 1024\n", own_pid=123)
    assert apps == [{"pid": 456, "used_memory_mib": 1024}]


def test_a_special_output_file_is_written_once_not_per_row(run, monkeypatch, tmp_path):
    """-o /dev/stdout or a FIFO is written through, never replaced: rows written as they
    finish would append one JSON document per row. Only regular files get them."""
    from cnnscope.cli import bench as bench_cli

    writes = []
    real = bench_cli.write_result
    monkeypatch.setattr(bench_cli, "write_result", lambda *a, **k: (writes.append(a[2]), real(*a, **k)))
    res = run("bench", "lenet5", "--batch", "1,2", "--format", "json", "-o", "/dev/null", *FAST,
              *ONE_THREAD)
    assert res.exit_code == 0, res.output
    assert writes == ["/dev/null"]
    writes.clear()
    out = tmp_path / "rows.json"
    res = run("bench", "lenet5", "--batch", "1,2", "-o", str(out), *FAST, *ONE_THREAD)
    assert res.exit_code == 0, res.output
    assert writes == [str(out)] * 3  # after each of the 2 rows, then the final result
