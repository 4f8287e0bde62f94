"""The CUDA path: events, synchronisation, peak memory, OOM recovery, CUDA graphs.

Skipped without a GPU. No assertion is about speed.
"""

import pytest
import torch

import cnnscope
from cnnscope.api import bench_row, run_sweep
from cnnscope.benchmark.precision import fp32_math
from cnnscope.benchmark.runner import BenchSettings, plan_rows
from cnnscope.benchmark.timing import CudaEventTimer, phase_times, timer_for
from cnnscope.models import resolve

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def settings(**kw):
    base = dict(device="cuda", warmup=2, max_warmup=2, iters=3, ceiling=False)
    return BenchSettings(**{**base, **kw})


def test_event_timer_measures_the_work_not_the_launch():
    timer = timer_for("cuda")
    assert isinstance(timer, CudaEventTimer)
    a = torch.randn(2048, 2048, device="cuda")
    m0 = timer.mark()
    for _ in range(5):
        a = a @ a.T / 2048
    m1 = timer.mark()
    m2 = timer.mark()
    timer.sync()
    t = phase_times(timer, [m0, m1, m2], ("work", "nothing"))
    assert t["work"] > 0 and t["nothing"] >= 0
    assert t["total"] == pytest.approx(t["work"] + t["nothing"], rel=1e-3, abs=1e-3)


@pytest.mark.parametrize("dtype", ["fp32", "tf32", "bf16", "fp16"])
@pytest.mark.parametrize("mode", ["infer", "train"])
def test_resnet18_rows(dtype, mode):
    if dtype == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")
    row = bench_row("resnet18", 4, dtype, mode, settings(channels_last=True))
    assert row.status == "ok", row.error
    assert row.device.startswith("cuda:") and row.device_name == torch.cuda.get_device_name()
    assert row.peak_memory_kind == "cuda max_memory_allocated"
    params = cnnscope.analyze("resnet18").totals.params
    # fp32 weights stay allocated through the timed iterations (autocast keeps masters)
    assert row.peak_memory_bytes >= params * 4
    if mode == "train":
        assert row.fwd_median_ms > 0 and row.bwd_median_ms > 0 and row.opt_median_ms > 0
        # training also holds one gradient per weight
        assert row.peak_memory_bytes >= params * 4 * 2


def test_fp32_math_switches_tf32_and_restores_it():
    from cnnscope.benchmark.env import tf32_settings

    before = tf32_settings()
    with fp32_math(torch.device("cuda"), "tf32"):
        inside = tf32_settings()
        assert any(v in (True, "tf32") for v in inside.values())
    with fp32_math(torch.device("cuda"), "fp32"):
        inside = tf32_settings()
        assert all(v in (False, "ieee") for v in inside.values())
    assert tf32_settings() == before


def test_real_oom_is_recorded_and_memory_is_returned():
    # A first row creates what lives for the whole process (cuBLAS workspaces, cuDNN
    # handles); the baseline is taken after it.
    assert bench_row("resnet18", 2, "fp32", "infer", settings()).status == "ok"
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    total = torch.cuda.get_device_properties(0).total_memory
    too_big = total // (3 * 224 * 224 * 4) + 1  # the input alone exceeds the device
    result = run_sweep(plan_rows([resolve("resnet18")], [2, too_big], ["fp32"], ["infer"]),
                       settings())
    assert [r.status for r in result.rows] == ["ok", "oom"]
    assert result.rows[1].median_ms is None
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= before + 1024 * 1024
    # and the device still works
    again = bench_row("resnet18", 2, "fp32", "infer", settings())
    assert again.status == "ok"


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_cuda_graphs(mode):
    row = bench_row("resnet18", 4, "fp32", mode, settings(cuda_graphs=True))
    assert row.status in ("ok", "unsupported"), row.error
    if row.status == "ok":
        assert row.cuda_graphs and row.median_ms > 0
        assert row.bwd_median_ms is None  # one replay per step: no split


def test_per_layer_on_cuda_uses_events():
    row = bench_row("resnet18", 4, "fp32", "train", settings(per_layer=True))
    assert row.status == "ok", row.error
    p = row.per_layer
    assert p.layers[0].name == "conv1"
    assert all(layer.fwd_ms >= 0 for layer in p.layers)
    assert p.hooked_bwd_ms > 0 and p.sum_bwd_ms > 0


def test_ceiling_on_cuda(tmp_path, monkeypatch):
    from cnnscope.benchmark import ceiling

    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path))
    ceiling.clear_run_cache()
    c = ceiling.matmul_ceiling(torch.device("cuda"), "bf16", sizes=(1024, 2048))
    assert c.tflops > 0 and c.dtype == "bf16" and not c.cached
    ceiling.clear_run_cache()


@pytest.mark.slow
def test_compile_on_cuda():
    row = bench_row("resnet18", 8, "bf16", "train", settings(compile=True, warmup=3, max_warmup=3))
    assert row.status == "ok", row.error
