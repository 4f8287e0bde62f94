"""The per-layer roofline of ``bench --per-layer``: bandwidth roof, verdicts, the footer.

No assertion is about speed. The roofs are planted in the cache (or built by hand) so the
verdicts follow from numbers written in the test.
"""

import json

import pytest
import torch

from cnnscope.benchmark.env import device_name

from cnnscope.benchmark import bandwidth as bandwidth_mod
from cnnscope.benchmark import ceiling as ceiling_mod
from cnnscope.benchmark.records import (
    BenchResult,
    BenchRow,
    CopyBandwidth,
    LayerTiming,
    PerLayer,
)
from cnnscope.benchmark.roofline import (
    apply_roofline,
    bound,
    most_time_for_least_work,
    ridge_point,
)

FAST = ["--device", "cpu", "--iters", "2", "--warmup", "1", "--max-warmup", "1", "--no-progress"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    # A calm machine: measurements count as stable (and are cached) whatever the load.
    monkeypatch.setattr(ceiling_mod, "causes", lambda *a, **k: ())
    monkeypatch.setattr(bandwidth_mod, "causes", lambda *a, **k: ())
    ceiling_mod.clear_run_cache()
    bandwidth_mod.clear_run_cache()
    yield
    ceiling_mod.clear_run_cache()
    bandwidth_mod.clear_run_cache()


def plant_roofs(cache, gflops: float, gbytes_per_s: float) -> None:
    """Cache entries as a measuring run writes them, with chosen values."""
    from cnnscope.benchmark.runner import torch_threads
    from cnnscope.benchmark.stability import default_threads

    with torch_threads(default_threads()):  # the threads a CLI run uses: part of the key
        key = ceiling_mod.device_key(torch.device("cpu"))
    cache.mkdir(parents=True, exist_ok=True)
    common = dict(device_name=device_name(torch.device("cpu")), measured_at="2026-01-01T00:00:00+00:00",
                  torch_version=torch.__version__, stable=True, spread=0.01, load_average=0.1)
    (cache / "matmul_ceiling.json").write_text(json.dumps(
        {key: {"fp32": dict(common, dtype="fp32", tflops=gflops / 1e3, n=512)}}))
    (cache / "copy_bandwidth.json").write_text(json.dumps(
        {key: dict(common, bytes_per_s=gbytes_per_s * 1e9, nbytes=1 << 20)}))


def test_ridge_point_and_verdicts():
    # 100 GFLOP/s over 20 GB/s: the roofs meet at 5 FLOP/byte.
    assert ridge_point(100e9, 20e9) == 5.0
    assert bound(4.99, 100e9, 20e9) == "memory"
    assert bound(5.0, 100e9, 20e9) == "compute"
    assert bound(None, 100e9, 20e9) is None


def layer(name, flops, nbytes, fwd_ms):
    return LayerTiming(name=name, type="T", macs=None, fwd_ms=fwd_ms, flops=flops, bytes_moved=nbytes)


def test_layer_rates_and_the_layers_that_waste_time():
    conv = layer("conv", 900_000_000, 3_000_000, 9.0)  # 90% of FLOPs in 9 of 12 ms
    bn = layer("bn", 10_000_000, 8_000_000, 2.0)  # 1% of FLOPs in 2 ms
    cat = layer("cat", 0, 4_000_000, 1.0)  # no FLOPs in 1 ms
    fc = layer("fc", 90_000_000, 1_000_000, 0.0005)
    assert conv.arithmetic_intensity == 900_000_000 / 3_000_000
    assert conv.achieved_flops == pytest.approx(900_000_000 / 9e-3)
    assert conv.achieved_bandwidth == pytest.approx(3_000_000 / 9e-3)
    assert cat.arithmetic_intensity == 0.0
    p = PerLayer(layers=(conv, bn, cat, fc), samples=1, sum_fwd_ms=12.0005,
                 hooked_fwd_ms=12.0005, clean_fwd_ms=12.0)
    judged = apply_roofline(p, 100e9, 20e9)  # ridge 5 FLOP/byte
    assert [x.bound for x in judged.layers] == ["compute", "memory", "memory", "compute"]
    assert judged.peak_flops == 100e9 and judged.peak_bandwidth == 20e9
    waste = most_time_for_least_work(judged)
    total_ms = 9.0 + 2.0 + 1.0 + 0.0005
    total_flops = 900_000_000 + 10_000_000 + 90_000_000
    # excess = time - total time x FLOP share; conv, fc spend less than their share
    assert [w.layer.name for w in waste] == ["bn", "cat"]
    assert waste[0].excess_ms == pytest.approx(2.0 - total_ms * 10_000_000 / total_flops)
    assert waste[1].excess_ms == pytest.approx(1.0)
    assert waste[0].time_share == pytest.approx(2.0 / total_ms)
    assert apply_roofline(p, None, 20e9) is p  # no ceiling: no verdict


def test_copy_bandwidth_counts_a_read_and_a_write(monkeypatch):
    class OneMs:
        def mark(self):
            return 0

        def sync(self):
            pass

        def elapsed_ms(self, a, b):
            return 1.0

    monkeypatch.setattr(bandwidth_mod, "timer_for", lambda device: OneMs())
    rate, size = bandwidth_mod.measure_copy(torch.device("cpu"), 1 << 20)
    assert size == 1 << 20
    assert rate == 2 * (1 << 20) / 1e-3  # read 1 MiB + write 1 MiB per millisecond


def test_copy_bandwidth_is_measured_once_and_cached(tmp_path):
    dev = torch.device("cpu")
    first = bandwidth_mod.copy_bandwidth(dev, nbytes=1 << 20)
    assert not first.cached and first.bytes_per_s > 0 and first.nbytes == 1 << 20
    key = ceiling_mod.device_key(dev)
    stored = json.loads((tmp_path / "cache" / "copy_bandwidth.json").read_text())
    assert stored[key]["bytes_per_s"] == pytest.approx(first.bytes_per_s)
    assert bandwidth_mod.copy_bandwidth(dev) is first  # same run
    bandwidth_mod.clear_run_cache()
    again = bandwidth_mod.copy_bandwidth(dev)  # a later run: from the file
    assert again.cached and again.bytes_per_s == pytest.approx(first.bytes_per_s)
    fresh = bandwidth_mod.copy_bandwidth(dev, remeasure=True, nbytes=1 << 16)
    assert not fresh.cached and fresh.nbytes == 1 << 16


def test_per_layer_json_carries_the_roofline_of_every_layer(run, tmp_path):
    plant_roofs(tmp_path / "cache", gflops=1.0, gbytes_per_s=0.5)  # ridge 2 FLOP/byte
    res = run("bench", "lenet5", "--per-layer", "--format", "json", *FAST)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["copy_bandwidth"]["bytes_per_s"] == 0.5e9 and data["copy_bandwidth"]["cached"]
    p = data["rows"][0]["per_layer"]
    assert p["peak_flops"] == pytest.approx(1e9) and p["peak_bandwidth"] == 0.5e9
    layers = {x["name"]: x for x in p["layers"]}
    c1 = layers["c1"]
    # LeNet-5 C1: 1x32x32 in, 6 5x5 kernels + 6 biases, 6x28x28 out, float32
    assert c1["bytes_moved"] == (32 * 32 + 6 * 5 * 5 + 6 + 6 * 28 * 28) * 4
    assert c1["arithmetic_intensity"] == c1["flops"] / c1["bytes_moved"]
    assert c1["achieved_flops"] == pytest.approx(c1["flops"] / (c1["fwd_ms"] * 1e-3))
    assert c1["achieved_bandwidth"] == pytest.approx(c1["bytes_moved"] / (c1["fwd_ms"] * 1e-3))
    for x in p["layers"]:
        for key in ("bytes_moved", "arithmetic_intensity", "achieved_flops",
                    "achieved_bandwidth", "bound"):
            assert key in x
        if x["arithmetic_intensity"] is not None:
            assert x["bound"] == ("memory" if x["arithmetic_intensity"] < 2.0 else "compute"), x
    assert c1["bound"] == "compute"  # 2 x 6x28x28x25 MACs + biases over 23,536 bytes: ~10
    assert BenchResult.from_dict(data).rows[0].per_layer.layers[0].bound == c1["bound"]


def test_table_names_roofs_and_the_layers_costing_most_time(run, tmp_path):
    plant_roofs(tmp_path / "cache", gflops=1.0, gbytes_per_s=0.5)
    res = run("bench", "lenet5", "--per-layer", *FAST)
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "FLOP/byte" in out and "fwd GB/s" in out and "bound" in out
    assert "roofs: 1 GFLOP/s (matmul ceiling), 0.5 GB/s (copy bandwidth); ridge point 2 FLOP/byte" in out
    assert "most time for least work (forward):" in out
    assert "minimal-traffic" in out


def test_half_precision_rows_count_two_bytes_per_element():
    import cnnscope
    from cnnscope.benchmark.per_layer import time_layers
    from cnnscope.benchmark.runner import BenchSettings, Workload
    from cnnscope.benchmark.timing import WallTimer

    report = cnnscope.analyze("lenet5")
    model = cnnscope.models.resolve("lenet5").build("cpu").eval()
    x = torch.randn(1, 1, 32, 32)
    work = Workload(model, x, report, "bf16", False, BenchSettings(device="cpu"), torch.device("cpu"))
    p = time_layers(work, WallTimer(), 1, report, clean_fwd_ms=None, clean_bwd_ms=None)
    c1 = next(x for x in p.layers if x.name == "c1")
    assert c1.bytes_moved == (32 * 32 + 6 * 5 * 5 + 6 + 6 * 28 * 28) * 2


def test_no_ceiling_means_no_verdict_and_no_bandwidth_measured(run, tmp_path):
    res = run("bench", "lenet5", "--per-layer", "--no-ceiling",
              "--format", "json", *FAST)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["copy_bandwidth"] is None
    assert all(x["bound"] is None for x in data["rows"][0]["per_layer"]["layers"])
    assert not (tmp_path / "cache" / "copy_bandwidth.json").exists()


def test_synthetic_row_renders_in_markdown():
    from cnnscope.report.render import render_text

    p = apply_roofline(PerLayer(layers=(layer("conv", 600, 100, 1.0), layer("relu", 10, 80, 1.0)),
                                samples=1, sum_fwd_ms=2.0, hooked_fwd_ms=2.0, clean_fwd_ms=2.0),
                       1e6, 1e5)  # ridge 10 FLOP/byte
    row = BenchRow(model="m", device="cpu", device_name="cpu", batch=1, dtype="fp32",
                   mode="infer", input_size=(3, 8, 8), median_ms=2.0, per_layer=p)
    md = render_text(BenchResult(env={}, settings={}, rows=[row], bandwidth=CopyBandwidth(
        device_name="cpu", bytes_per_s=1e5, nbytes=1 << 20, measured_at="t", torch_version="x")), "md")
    # conv: 600 FLOPs / 100 bytes = 6 < 10: memory-bound; 100 bytes in 1 ms = 1e5 B/s
    assert "| `conv` | T | - | 1.00 | - | 6 | 0.0001 | memory |" in md
    assert "relu (T) 50.0% of time for 1.6% of FLOPs" in md
    assert "copy bandwidth: 0.0001 GB/s" in md
