"""The benchmark runner on the CPU: tiny models, tiny batches, few iterations.

No assertion is about speed: the tests check what is measured, how the figures are
derived from it, and what happens when a row fails.
"""

import json

import pytest
import torch
from torch import nn

import cnnscope
from cnnscope.api import bench_row, run_sweep
from cnnscope.benchmark import ceiling as ceiling_mod
from cnnscope.benchmark.records import BenchResult
from cnnscope.api import default_models
from cnnscope.benchmark.runner import (
    BenchSettings,
    make_loss,
    plan_rows,
)
from cnnscope.benchmark.timing import WallTimer, phase_times
from cnnscope.cli.bench_args import parse_batches, parse_dtypes, parse_modes
from cnnscope.errors import DeviceUnavailableError, InvalidOptionError
from cnnscope.models import ModelSource

FAST = dict(device="cpu", warmup=1, max_warmup=1, iters=3, ceiling=False)


class TinyNet(nn.Module):
    """conv-bn-relu(inplace) twice, the second conv called twice (shared weights), pool, fc."""

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.conv2(x)
        x = self.conv2(x) + x  # second call of the same layer, then a residual add
        return self.fc(torch.flatten(self.pool(x), 1))


def tiny(name="tiny", builder=TinyNet):
    return ModelSource(name=name, input_size=(3, 8, 8), builder=builder)


def settings(**kw):
    return BenchSettings(**{**FAST, **kw})


# ----------------------------------------------------------------------------- one row


def test_inference_row_figures_follow_from_the_samples():
    row = bench_row(tiny(), 2, "fp32", "infer", settings())
    assert row.status == "ok" and row.error is None
    assert row.samples == 3
    assert row.p10_ms <= row.p25_ms <= row.median_ms <= row.p75_ms <= row.p90_ms
    assert row.iqr_ms == pytest.approx(row.p75_ms - row.p25_ms)
    assert row.throughput == pytest.approx(2 / (row.median_ms / 1e3))
    macs = cnnscope.analyze(tiny(), batch=2).totals.macs
    assert row.macs == macs
    assert row.achieved_tflops == pytest.approx(2 * macs / (row.median_ms / 1e3) / 1e12)
    assert row.bwd_median_ms is None and row.opt_median_ms is None
    assert row.peak_memory_bytes and row.peak_memory_bytes > 0
    assert "process peak RSS" in row.peak_memory_kind
    assert row.warmup_iters == 1 and row.warmup_settled is None  # fixed warm-up
    assert row.device == "cpu" and row.input_size == (3, 8, 8)


def test_training_row_has_forward_backward_and_step():
    row = bench_row(tiny(), 2, "fp32", "train", settings())
    assert row.status == "ok"
    assert row.fwd_median_ms > 0 and row.bwd_median_ms > 0 and row.opt_median_ms > 0
    macs = cnnscope.analyze(tiny(), batch=2, train=True).totals.macs
    # batch 2, 8x8 maps: conv1 3->4 k3, conv2 4->4 k3 (called twice), fc 4->5
    conv1, conv2, fc = 2 * 4 * 8 * 8 * 3 * 9, 2 * 4 * 8 * 8 * 4 * 9, 2 * 4 * 5
    assert macs == conv1 + 2 * conv2 + fc
    # counted backward: conv1 has no input gradient (the data needs none), only its
    # weight gradient; conv2 (both calls) and fc both gradients
    bwd = conv1 + 2 * (2 * conv2) + 2 * fc
    assert row.backward_macs == bwd
    assert row.fwd_tflops == pytest.approx(2 * macs / (row.fwd_median_ms / 1e3) / 1e12)
    assert row.bwd_tflops == pytest.approx(2 * bwd / (row.bwd_median_ms / 1e3) / 1e12)
    assert row.achieved_tflops == pytest.approx(2 * (macs + bwd) / (row.median_ms / 1e3) / 1e12)


def test_zoo_model_lenet5_infer_and_train():
    for mode in ("infer", "train"):
        row = bench_row("lenet5", 1, "fp32", mode, settings(iters=2))
        assert row.status == "ok", row.error
        assert row.model == "lenet5" and row.input_size == (1, 32, 32)
        assert row.macs == cnnscope.analyze("lenet5", train=mode == "train").totals.macs


def test_training_really_updates_the_weights():
    # The timed step is a real step: the optimizer moved the weights.
    class Spy(TinyNet):
        instances = []

        def __init__(self):
            super().__init__()
            Spy.instances.append(self)
            self.start = None

        def forward(self, x):
            if self.start is None:
                self.start = self.fc.weight.detach().clone()
            return super().forward(x)

    row = bench_row(tiny(builder=Spy), 2, "fp32", "train", settings())
    assert row.status == "ok"
    net = Spy.instances[-1]
    assert not torch.equal(net.start, net.fc.weight.detach())


def test_eval_mode_for_inference_and_train_mode_for_training():
    seen = []

    class Probe(TinyNet):
        def forward(self, x):
            if x.device.type != "meta":  # the meta trace for the MACs is not a timed run
                seen.append((self.training, torch.is_grad_enabled()))
            return super().forward(x)

    bench_row(tiny(builder=Probe), 1, "fp32", "infer", settings())
    assert seen and all(s == (False, False) for s in seen)
    seen.clear()
    bench_row(tiny(builder=Probe), 1, "fp32", "train", settings())
    assert seen and all(s == (True, True) for s in seen)


def test_half_types_run_under_autocast_on_cpu():
    dtypes = []

    class Probe(TinyNet):
        def forward(self, x):
            out = super().forward(x)
            if x.device.type != "meta":
                dtypes.append(out.dtype)
            return out

    for dt, expected in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        dtypes.clear()
        row = bench_row(tiny(builder=Probe), 2, dt, "train", settings(iters=2))
        assert row.status == "ok", row.error
        assert set(dtypes) == {expected}  # the linear layer ran in the half type


def test_channels_last_runs_with_nhwc_input():
    layouts = []

    class Probe(TinyNet):
        def forward(self, x):
            if x.device.type != "meta":
                layouts.append(x.is_contiguous(memory_format=torch.channels_last))
            return super().forward(x)

    row = bench_row(tiny(builder=Probe), 2, "fp32", "infer", settings(channels_last=True))
    assert row.status == "ok" and row.channels_last
    assert layouts and all(layouts)


def test_min_time_runs_at_least_min_samples():
    row = bench_row(tiny(), 1, "fp32", "infer", settings(iters=None, min_time=0.001, min_samples=4))
    assert row.status == "ok" and row.samples >= 4


def test_seed_gives_the_same_weights():
    weights = []

    class Probe(TinyNet):
        def __init__(self):
            super().__init__()
            if self.conv1.weight.device.type != "meta":
                weights.append(self.conv1.weight.detach().clone())

    bench_row(tiny(builder=Probe), 1, "fp32", "infer", settings(seed=3))
    bench_row(tiny(builder=Probe), 1, "fp32", "infer", settings(seed=3))
    bench_row(tiny(builder=Probe), 1, "fp32", "infer", settings(seed=4))
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


# ----------------------------------------------------------------------------- per layer


def test_per_layer_names_match_the_trace_and_cover_backward():
    src = tiny()
    row = bench_row(src, 2, "fp32", "train", settings(per_layer=True))
    assert row.status == "ok", row.error
    p = row.per_layer
    report = cnnscope.analyze(src, batch=2, train=True)
    traced = [r.name for r in report.layers if r.kind == "module"]
    assert [layer.name for layer in p.layers] == traced  # incl. "conv2#2" and inplace relu
    assert "conv2#2" in traced
    by_name = {layer.name: layer for layer in p.layers}
    for r in report.layers:
        if r.kind == "module":
            assert by_name[r.name].macs == r.macs
    # every layer here is on the gradient path (conv1's weight needs its grad)
    assert all(layer.bwd_ms is not None and layer.bwd_ms >= 0 for layer in p.layers)
    assert p.sum_fwd_ms == pytest.approx(sum(layer.fwd_ms for layer in p.layers))
    assert p.sum_bwd_ms == pytest.approx(sum(layer.bwd_ms for layer in p.layers))
    assert p.clean_fwd_ms == row.fwd_median_ms and p.clean_bwd_ms == row.bwd_median_ms
    assert p.hooked_fwd_ms > 0 and p.hooked_bwd_ms > 0 and p.loss_bwd_ms is not None
    conv = by_name["conv1"]
    assert conv.fwd_tflops == pytest.approx(2 * conv.macs / (conv.fwd_ms / 1e3) / 1e12)
    # conv1 needs no input gradient: its backward is its weight gradient alone
    assert conv.bwd_macs == conv.macs == 2 * 4 * 8 * 8 * 3 * 9
    assert conv.bwd_tflops == pytest.approx(2 * conv.macs / (conv.bwd_ms / 1e3) / 1e12)


def test_per_layer_inference_has_no_backward_and_hooks_are_removed():
    built = []

    class Keep(TinyNet):
        def __init__(self):
            super().__init__()
            built.append(self)

    row = bench_row(tiny(builder=Keep), 1, "fp32", "infer", settings(per_layer=True))
    assert row.per_layer.hooked_bwd_ms is None
    assert all(layer.bwd_ms is None for layer in row.per_layer.layers)
    net = built[-1]
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


# ----------------------------------------------------------------------------- failures


def _failing(exc_factory, at_batch=3):
    class Failing(TinyNet):
        def forward(self, x):
            # Not on the meta device: the trace that counts MACs allocates nothing.
            if x.device.type != "meta" and x.shape[0] >= at_batch:
                raise exc_factory()
            return super().forward(x)

    return Failing


def test_oom_is_a_row_and_the_sweep_goes_on():
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    src = tiny("oomy", _failing(lambda: oom("CUDA out of memory. Tried to allocate 1 GiB")))
    specs = plan_rows([src, tiny()], [4, 1, 2], ["fp32"], ["infer"])
    assert [(s.source.name, s.batch) for s in specs] == [
        ("oomy", 1), ("oomy", 2), ("oomy", 4), ("tiny", 1), ("tiny", 2), ("tiny", 4)]
    result = run_sweep(specs, settings())
    assert [r.status for r in result.rows] == ["ok", "ok", "oom", "ok", "ok", "ok"]
    oom_row = result.rows[2]
    assert oom_row.median_ms is None and oom_row.throughput is None  # never a timing
    assert "out of memory" in oom_row.error
    assert not result.interrupted


def test_cpu_allocator_failure_counts_as_oom():
    src = tiny("big", _failing(lambda: RuntimeError(
        "[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't allocate memory"), 1))
    assert bench_row(src, 1, "fp32", "infer", settings()).status == "oom"


def test_other_failures_are_error_rows_without_timings():
    src = tiny("broken", _failing(lambda: RuntimeError("boom"), 1))
    row = bench_row(src, 1, "fp32", "train", settings())
    assert row.status == "error" and "boom" in row.error
    assert row.median_ms is None and row.achieved_tflops is None


def test_ctrl_c_keeps_the_rows_already_measured():
    src = tiny("stops", _failing(KeyboardInterrupt, at_batch=2))
    result = run_sweep(plan_rows([src], [1, 2, 4], ["fp32"], ["infer"]), settings())
    assert result.interrupted
    assert result.planned == 3
    assert [r.batch for r in result.rows] == [1] and result.rows[0].ok


def test_sweep_records_environment_and_json_round_trips():
    result = run_sweep(plan_rows([tiny()], [1], ["fp32"], ["infer", "train"]), settings())
    assert isinstance(result, BenchResult)
    env = result.env
    for key in ("torch", "device_name", "cudnn_benchmark", "cuda_runtime", "cpu", "torch_threads"):
        assert key in env
    assert env["torch"] == torch.__version__
    data = json.loads(json.dumps(result.to_dict()))
    row = data["rows"][0]
    for key in ("model", "device", "batch", "dtype", "mode", "median_ms", "throughput",
                "peak_memory_bytes", "achieved_tflops"):
        assert key in row
    assert [r["mode"] for r in data["rows"]] == ["infer", "train"]


def test_a_saved_sweep_reads_back_into_the_same_result():
    # Measure once (on a GPU machine, say), render again later from the JSON.
    from dataclasses import replace

    from cnnscope.report.render import render_text

    result = run_sweep(plan_rows([tiny()], [1], ["fp32"], ["infer", "train"]),
                       settings(per_layer=True))
    result = replace(result, rows=result.rows + (
        bench_row(tiny("broken", lambda: 1 / 0), 1, "fp32", "infer", settings()),))
    data = json.loads(render_text(result, "json"))
    back = BenchResult.from_dict(data)
    assert back == result
    assert back.rows[1].per_layer.layers == result.rows[1].per_layer.layers
    assert back.rows[2].status == "error" and back.rows[2].median_ms is None
    assert render_text(back, "md") == render_text(result, "md")
    assert render_text(back, "csv") == render_text(result, "csv")


# ----------------------------------------------------------------------------- pieces


def test_loss_covers_class_scores_segmentation_maps_and_tuples():
    loss = make_loss([(2, 5), (2, 3, 4, 4), (2, 1)], torch.device("cpu"))
    out = (torch.randn(2, 5, requires_grad=True), torch.randn(2, 3, 4, 4, requires_grad=True),
           torch.randn(2, 1, requires_grad=True))
    value = loss(out)
    value.backward()
    assert value.ndim == 0 and all(t.grad is not None for t in out)
    with pytest.raises(RuntimeError, match="the model returned 2 tensors, the trace saw 3"):
        loss(out[:2])


def test_wall_timer_phases_add_up():
    timer = WallTimer()
    marks = [0, 1_000_000, 3_000_000, 3_500_000]  # nanoseconds
    t = phase_times(timer, marks, ("fwd", "bwd", "opt"))
    assert t == {"fwd": 1.0, "bwd": 2.0, "opt": 0.5, "total": 3.5}
    with pytest.raises(ValueError):
        phase_times(timer, marks, ("fwd",))


def test_option_parsing_and_validation():
    assert parse_batches("1, 32,128,32") == [1, 32, 128]
    assert parse_modes("infer,train") == ["infer", "train"]
    assert parse_dtypes("fp32,BF16", torch.device("cpu")) == ["fp32", "bf16"]
    for bad in (lambda: parse_batches("0"), lambda: parse_batches("x"),
                lambda: parse_modes("eval"), lambda: parse_dtypes("fp8", torch.device("cpu")),
                lambda: parse_dtypes("tf32", torch.device("cpu")),
                lambda: settings(cuda_graphs=True).check(),
                lambda: settings(per_layer=True, compile=True).check(),
                lambda: settings(iters=0).check(),
                lambda: settings(device="meta").check()):
        with pytest.raises(InvalidOptionError):
            bad()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_cuda_without_a_gpu_is_a_device_error():
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
        settings(device="cuda").check()


def test_default_set_has_one_registered_model_per_family():
    from cnnscope.zoo import list_models, model_info

    names = default_models()
    assert names and set(names) <= set(list_models())
    families = [model_info(n).family for n in names]
    assert len(families) == len(set(families))
    if "resnet50" in list_models():
        assert "resnet50" in names


def test_ceiling_is_measured_once_and_cached_per_device(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path))
    # A calm machine: no cause of instability, so the measurement is written, and (on a
    # loaded or one-core runner) its spread still passes the check of the reading side.
    monkeypatch.setattr(ceiling_mod, "causes", lambda *a, **k: ())
    monkeypatch.setattr(ceiling_mod, "SPREAD_LIMIT", float("inf"))
    ceiling_mod.clear_run_cache()
    dev = torch.device("cpu")
    first = ceiling_mod.matmul_ceiling(dev, "fp32", sizes=(32, 64))
    assert not first.cached and first.tflops > 0 and first.n in (32, 64)
    stored = json.loads((tmp_path / "matmul_ceiling.json").read_text())
    key = ceiling_mod.device_key(dev)
    assert stored[key]["fp32"]["tflops"] == pytest.approx(first.tflops)
    assert ceiling_mod.matmul_ceiling(dev, "fp32") is first  # same run: not measured again
    ceiling_mod.clear_run_cache()
    again = ceiling_mod.matmul_ceiling(dev, "fp32")  # a later run: from the file
    assert again.cached and again.tflops == pytest.approx(first.tflops)
    fresh = ceiling_mod.matmul_ceiling(dev, "fp32", remeasure=True, sizes=(32,))
    assert not fresh.cached and fresh.n == 32
    ceiling_mod.clear_run_cache()


def test_ceiling_fraction_is_achieved_over_ceiling(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path))
    ceiling_mod.clear_run_cache()
    c = ceiling_mod.matmul_ceiling(torch.device("cpu"), "fp32", sizes=(32,))
    row = bench_row(tiny(), 1, "fp32", "infer", settings(), ceiling=c)
    assert row.ceiling_tflops == c.tflops
    assert row.ceiling_fraction == pytest.approx(row.achieved_tflops / c.tflops)
    ceiling_mod.clear_run_cache()


@pytest.mark.slow
def test_compile_on_cpu_excludes_compilation_from_timing():
    row = bench_row(tiny(), 2, "fp32", "infer", settings(compile=True, warmup=2, max_warmup=2))
    assert row.status == "ok", row.error
    assert row.compiled and row.samples == 3


def test_pass_through_layers_do_not_take_their_producers_backward_time():
    from cnnscope.benchmark.per_layer import LayerHooks

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.skip = nn.Identity()
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.act(self.skip(self.fc(x)))

    net = Net()
    hooks = LayerHooks(net, WallTimer(), backward=True).attach()
    hooks.start_iteration()
    net(torch.randn(2, 4)).sum().backward()
    hooks.remove()
    assert [name for name, *_ in hooks.fwd] == ["fc", "skip", "act"]
    # backward starts in reverse order; the identity has none of its own
    assert [name for name, _ in hooks.bwd] == ["act", "fc"]
