"""``cnnscope bench`` through the CLI: formats, files, clean errors, Ctrl-C."""

import csv
import io
import json

import pytest
import torch

# One torch thread: bench's default is one per usable core, and on a busy 2-core machine
# the second OpenMP worker mostly spins (these are tests of plumbing, not of timing; the
# default is tested in test_stability.py). 4 rows of lenet5 cost 1.75 CPU s with 2
# threads, 0.24 s with one.
FAST = ["--device", "cpu", "--iters", "2", "--warmup", "1", "--max-warmup", "1", "--no-ceiling",
        "--no-progress", "--threads", "1"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))


def test_json_rows_carry_the_documented_fields(run):
    result = run("bench", "lenet5", "--batch", "1,2", "--mode", "infer,train", "--format", "json", *FAST)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = data["rows"]
    assert [(r["batch"], r["mode"]) for r in rows] == [(1, "infer"), (2, "infer"), (1, "train"), (2, "train")]
    for r in rows:
        for key in ("model", "device", "batch", "dtype", "mode", "median_ms", "throughput",
                    "peak_memory_bytes", "achieved_tflops"):
            assert r[key] is not None, key
        assert r["status"] == "ok" and r["samples"] == 2 and r["device"] == "cpu"
    assert rows[2]["fwd_median_ms"] and rows[2]["bwd_median_ms"]
    for key in ("torch", "device_name", "cudnn_benchmark", "cuda_runtime"):
        assert key in data["env"]
    assert "matmul-equivalent" in data["flop_basis"]


def test_table_markdown_csv_and_output_file(run, tmp_path):
    table = run("bench", "lenet5", *FAST)
    assert table.exit_code == 0, table.output
    assert "lenet5" in table.stdout and "median ms" in table.stdout and "torch " in table.stdout

    md = run("bench", "lenet5", "--format", "md", *FAST)
    assert md.exit_code == 0 and "| `lenet5` | 1 | fp32 | infer |" in md.stdout

    out = tmp_path / "bench.csv"
    res = run("bench", "lenet5", "--batch", "1,2", "--format", "csv", "-o", str(out), *FAST)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["batch"] for r in rows] == ["1", "2"] and all(r["status"] == "ok" for r in rows)
    assert float(rows[0]["median_ms"]) > 0
    # The file is rewritten after each row (a crash keeps what finished), but said once.
    assert res.stderr.count(f"wrote {out}") == 1, res.stderr


def test_per_layer_table_and_csv(run):
    res = run("bench", "lenet5", "--mode", "train", "--per-layer", "--top", "3", *FAST)
    assert res.exit_code == 0, res.output
    assert "per layer: lenet5 b1 fp32 train (top 3 of" in res.stdout
    assert "sum of layers" in res.stdout and "without hooks" in res.stdout

    res = run("bench", "lenet5", "--per-layer", "--format", "csv", *FAST)
    assert res.exit_code == 0, res.output
    layers = list(csv.DictReader(io.StringIO(res.stdout)))
    assert layers and layers[0]["layer"] == "c1" and layers[0]["type"] == "Conv2d"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_cuda_without_a_gpu_is_a_one_line_error(run, one_line_error):
    res = run("bench", "lenet5", "--device", "cuda")
    one_line_error(res)
    assert "CUDA is not available" in res.stderr and "--device cpu" in res.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_no_model_and_cuda_without_a_gpu_is_the_same_error(run, one_line_error):
    one_line_error(run("bench", "--device", "cuda"))


@pytest.mark.parametrize("args", [
    ["bench", "lenet", "--device", "cpu"],  # unknown model
    ["bench", "lenet5", "--device", "cpu", "--iters", "3", "--min-time", "1"],
    ["bench", "lenet5", "--device", "cpu", "--dtype", "tf32"],
    ["bench", "lenet5", "--device", "cpu", "--dtype", "fp8"],
    ["bench", "lenet5", "--device", "cpu", "--batch", "0"],
    ["bench", "lenet5", "--device", "cpu", "--mode", "eval"],
    ["bench", "lenet5", "--device", "cpu", "--cuda-graphs"],
    ["bench", "lenet5", "--device", "cpu", "--per-layer", "--compile"],
    ["bench", "lenet5", "--device", "meta"],
    ["bench", "lenet5", "--device", "tpu"],
])
def test_bad_options_are_one_line_errors(run, one_line_error, args):
    one_line_error(run(*args))


@pytest.mark.parametrize("model, size, expected", [
    # VGG-16's fourth max-pool halves 8 -> 4 -> 2 -> 1, and the fourth gets a 1x1 map.
    ("vgg16", "3x8x8", "too small for vgg16"),
    ("resnet18", "1x64x64", "on input 1x64x64"),  # conv1 wants 3 channels
])
def test_an_input_a_model_cannot_take_fails_before_anything_runs(run, one_line_error, tmp_path, monkeypatch,
                                                                   model, size, expected):
    from cnnscope.benchmark import runner

    def must_not_run(*args, **kwargs):
        raise AssertionError("a row was measured")

    monkeypatch.setattr(runner, "bench_row", must_not_run)
    out = tmp_path / "bench.json"
    res = run("bench", model, "--input", size, "--format", "json", "-o", str(out), *FAST)
    one_line_error(res)
    assert expected in res.stderr and not out.exists()


def test_ctrl_c_prints_the_rows_measured_so_far(run, monkeypatch):
    from cnnscope.benchmark import runner

    real = runner.bench_row
    calls = []

    def interrupt_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "bench_row", interrupt_second)
    res = run("bench", "lenet5", "--batch", "1,2,3", "--format", "json", *FAST)
    assert res.exit_code == 130
    data = json.loads(res.stdout)
    assert data["interrupted"] is True and data["planned_rows"] == 3
    assert [r["batch"] for r in data["rows"]] == [1]
    assert "interrupted: 1 of 3 rows measured" in res.stderr


def test_a_failed_row_is_reported_without_timings_and_exit_1(run, monkeypatch):
    from cnnscope.benchmark import runner
    from cnnscope.benchmark.records import BenchRow

    def fail(source, batch, dtype, mode, settings, **kw):
        return BenchRow(model=source.name, device="cpu", device_name="x", batch=batch, dtype=dtype,
                        mode=mode, input_size=(1, 32, 32), status="error", error="RuntimeError: boom")

    monkeypatch.setattr(runner, "bench_row", fail)
    res = run("bench", "lenet5", "--format", "json", *FAST)
    assert res.exit_code == 1
    row = json.loads(res.stdout)["rows"][0]
    assert row["status"] == "error" and row["median_ms"] is None
    assert "boom" in res.stderr


def test_default_model_set_is_planned_from_the_zoo(run, monkeypatch):
    from cnnscope.benchmark import runner

    seen = []

    def record(specs, settings, **kw):
        seen.extend(s.source.name for s in specs)
        from cnnscope.benchmark.records import BenchResult

        return BenchResult(env={"device": "cpu", "device_name": "x"}, settings={}, planned=len(specs))

    monkeypatch.setattr(runner, "run_sweep", record)
    res = run("bench", "--format", "json", *FAST)
    assert res.exit_code == 0, res.output
    from cnnscope.api import default_models

    assert seen == default_models()


def test_help_describes_the_command(run):
    res = run("bench", "--help")
    assert res.exit_code == 0
    for opt in ("--device", "--batch", "--dtype", "--mode", "--channels-last", "--compile",
                "--cuda-graphs", "--warmup", "--iters", "--min-time", "--seed", "--per-layer",
                "--format", "--output"):
        assert opt in res.stdout


def _synthetic_result():
    from cnnscope.benchmark.records import BenchResult, BenchRow, MatmulCeiling

    ok = BenchRow(model="m", device="cuda:0", device_name="GPU", batch=32, dtype="bf16",
                  mode="infer", input_size=(3, 224, 224), samples=20, median_ms=10.0, p10_ms=9.0,
                  p25_ms=9.5, p75_ms=10.5, p90_ms=11.0, throughput=3200.0, macs=4_000_000_000 * 32,
                  achieved_tflops=2 * 4e9 * 32 / 10e-3 / 1e12, ceiling_tflops=512.0,
                  ceiling_fraction=2 * 4e9 * 32 / 10e-3 / 1e12 / 512.0, peak_memory_bytes=2**30)
    oom = BenchRow(model="m", device="cuda:0", device_name="GPU", batch=4096, dtype="bf16",
                   mode="infer", input_size=(3, 224, 224), status="oom",
                   error="out of memory at batch 4096")
    ceiling = MatmulCeiling(device_name="GPU", dtype="bf16", tflops=512.0, n=8192,
                            measured_at="2026-01-01T00:00:00+00:00", torch_version="x")
    return BenchResult(env={"device": "cuda:0", "device_name": "GPU", "device_type": "cuda",
                            "torch": "x", "cudnn_benchmark": True},
                       settings={}, rows=[ok, oom], ceilings={"bf16": ceiling}, planned=2)


def test_renderers_show_oom_rows_without_numbers_and_the_ceiling():
    from cnnscope.report.render import render_text

    result = _synthetic_result()
    md = render_text(result, "md")
    # 2 * 4e9 * 32 FLOP in 10 ms = 25.6 TFLOP/s, 5.0% of a 512 TFLOP/s ceiling
    assert "| `m` | 32 | bf16 | infer | 10.00 | 1.00 | 20 | - | - | 3,200 | 1.00 GiB | 25.6 | 5.0% | ok |" in md
    assert "| `m` | 4096 | bf16 | infer | - |" in md and "OOM: out of memory at batch 4096" in md
    assert "dense matmul ceiling bf16: 512 TFLOP/s (torch.mm 8192x8192" in md
    rows = list(csv.DictReader(io.StringIO(render_text(result, "csv"))))
    assert rows[1]["status"] == "oom" and rows[1]["median_ms"] == ""
    data = json.loads(render_text(result, "json"))
    assert data["rows"][1]["throughput"] is None and data["ceilings"]["bf16"]["n"] == 8192
    from cnnscope.benchmark.records import BenchResult

    assert BenchResult.from_dict(data) == result  # ceilings and an OOM row read back too


def test_rates_below_one_tflops_are_shown_in_gflops():
    from cnnscope.report.bench_render import flops_unit, tflops

    assert flops_unit([0.0123, None, 0.5]) == ("GFLOP/s", 1000.0)
    assert flops_unit([0.5, 12.0]) == ("TFLOP/s", 1.0)
    assert tflops(0.0123, 1000.0) == "12.3"


def test_environment_line_names_what_applies_to_the_device():
    from cnnscope.report.bench_render import env_line

    cuda = env_line({"device_type": "cuda", "torch": "2.13.0", "cuda_runtime": "12.8",
                     "cudnn": 91000, "driver": "570.1", "compute_capability": "9.0",
                     "cudnn_benchmark": True})
    assert cuda == ("torch 2.13.0, CUDA 12.8, cuDNN 91000, driver 570.1, capability 9.0, "
                    "cudnn.benchmark=True")
    cpu = env_line({"device_type": "cpu", "torch": "2.13.0", "torch_threads": 2,
                    "load_average": [0.5, 0.4, 0.3], "cudnn_benchmark": True})
    assert cpu == "torch 2.13.0, 2 torch threads, load average 0.5 0.4 0.3"


def test_help_reads_at_80_columns_in_panels(run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    res = run("bench", "--help")
    assert res.exit_code == 0
    text = res.stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text  # no option name or metavar cut
    panels = ["What to run", "On a GPU", "How to time", "Output", "Distributed"]
    assert [p for p in panels if f"─ {p} ─" in text] == panels
    for option in ("--threads", "--strict", "--wide", "--no-cudnn-benchmark", "--remeasure-ceiling"):
        assert option in text, option
