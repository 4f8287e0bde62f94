"""The training-memory planner (cnnscope memory): arithmetic, measurement, CLI."""

import json

import pytest
import torch
from torch import nn

from cnnscope.analysis.memory import CATEGORIES, parse_bytes
from cnnscope.api import fit_batch, plan_memory
from cnnscope.benchmark.step_memory import measure_real
from cnnscope.errors import InvalidOptionError
from cnnscope.models import ModelSource, resolve
from cnnscope.trace import memory as trace_memory

F32 = 4


def conv_relu():
    return ModelSource(name="conv_relu", input_size=(3, 8, 8), builder=lambda: nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU()))


def test_categories_are_the_same_in_trace_and_analysis():
    assert CATEGORIES == trace_memory.CATEGORIES


def test_conv_relu_peak_written_out():
    p = plan_memory(conv_relu(), batch=2)
    weight = 8 * 3 * 3 * 3 * F32
    x = 2 * 3 * 8 * 8 * F32
    target = 2 * 8 * 8 * 8  # per-pixel class indices, int64
    act = 2 * 8 * 8 * 8 * F32  # one (2, 8, 8, 8) float32 map
    assert p.breakdown["parameters"] == weight
    assert p.breakdown["optimizer_state"] == weight  # SGD momentum buffer
    assert p.breakdown["input"] == x + target
    # saved for backward: the ReLU's output and log_softmax's output
    assert p.breakdown["activations"] == 2 * act
    # the peak comes right after log_softmax's backward: the gradient reaching it, the one
    # it returns, and two 0-dim float32 scalars (the loss and its gradient of one)
    assert p.peak_phase == "backward" and p.peak_op == "_log_softmax_backward_data"
    assert p.breakdown["transient"] == 2 * act + 2 * F32
    assert p.peak_bytes == sum(p.breakdown.values())
    assert p.peak_bytes == 2 * weight + x + target + 4 * act + 2 * F32
    saved = dict(p.saved_by_module)
    assert saved["1"] == act  # the ReLU (module "1") saved its output
    assert saved["<outside modules>"] == act + F32  # the loss: log_softmax out, nll's total weight


def test_optimizer_state_by_optimizer():
    src = conv_relu()
    weight = 8 * 3 * 3 * 3 * F32
    assert plan_memory(src, batch=2, optimizer="sgd").breakdown["optimizer_state"] == weight
    assert plan_memory(src, batch=2, optimizer="sgd-nesterov").breakdown["optimizer_state"] == weight
    # Adam(W): two moments per parameter plus a float32 step counter per parameter tensor
    for name in ("adam", "adamw"):
        assert plan_memory(src, batch=2, optimizer=name).breakdown["optimizer_state"] == 2 * weight + F32


def test_resnet18_parameters_gradients_and_state_match_its_parameter_count():
    p = plan_memory("resnet18", batch=2)
    assert p.params == 11_689_512
    assert p.breakdown["parameters"] == 11_689_512 * F32
    assert p.breakdown["optimizer_state"] == 11_689_512 * F32
    assert p.breakdown["gradients"] <= 11_689_512 * F32
    assert p.breakdown["input"] == 2 * 3 * 224 * 224 * F32 + 2 * 8  # images + int64 labels
    assert p.peak_bytes == sum(p.breakdown.values())


def test_frozen_layers_have_no_gradient_and_no_optimizer_state():
    p = plan_memory("resnet18", batch=2, freeze=["layer1"])
    frozen = 4 * 64 * 64 * 9 + 4 * 2 * 64
    assert p.trainable_params == 11_689_512 - frozen
    assert p.breakdown["optimizer_state"] == (11_689_512 - frozen) * F32


def test_inference_keeps_no_gradients_state_or_saved_tensors():
    p = plan_memory("resnet18", batch=4, inference=True)
    assert p.breakdown["gradients"] == p.breakdown["optimizer_state"] == 0
    assert p.breakdown["activations"] == 0 and p.optimizer is None
    assert p.peak_bytes < plan_memory("resnet18", batch=4).peak_bytes


def test_bf16_autocast_saves_smaller_activations_with_fp32_master_weights():
    fp32 = plan_memory("resnet18", batch=4)
    bf16 = plan_memory("resnet18", batch=4, dtype="bf16")
    assert bf16.breakdown["parameters"] == fp32.breakdown["parameters"]
    assert bf16.breakdown["optimizer_state"] == fp32.breakdown["optimizer_state"]
    assert bf16.breakdown["activations"] < fp32.breakdown["activations"]


def test_meta_autocast_casts_like_torch_autocast_on_the_cpu():
    # torch.autocast has no meta backend: the planner casts itself. Same dtypes as the CPU's.
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 3))
    x = torch.randn(2, 3, 8, 8)
    seen_cpu, seen_meta = [], []
    for i, m in enumerate(net):
        m.register_forward_hook(lambda mod, a, out, i=i: (seen_meta if out.is_meta else seen_cpu)
                                .append((i, out.dtype)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net(x)
    meta = resolve_meta(net)
    with trace_memory.MetaAutocast(torch.bfloat16):
        meta(x.to("meta"))
    assert seen_meta == seen_cpu


def resolve_meta(net):
    from cnnscope.api import meta_copy

    return meta_copy(net)


def largest_conv_weight_bytes(net: nn.Module) -> int:
    return max(m.weight.numel() * m.weight.element_size() for m in net.modules()
               if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("name,size,batch,opts", [
    ("resnet18", (3, 64, 64), 2, {}),
    ("mobilenet_v2", (3, 64, 64), 2, {"optimizer": "adam"}),
    ("resnet18", (3, 64, 64), 2, {"dtype": "bf16"}),
])
def test_estimate_against_the_cpu_allocator(name, size, batch, opts):
    plan = plan_memory(name, size, batch, **opts)
    torch.manual_seed(0)
    net = resolve(name).build("cpu")
    measured = measure_real(net, size, batch, "cpu", **opts)
    assert measured.allocator_peak_bytes > 0
    # Machine-independent: the tensors a real step keeps alive (live storage on real
    # kernels) are what the plan counts, on any CPU and thread count.
    assert plan.peak_bytes == pytest.approx(measured.live_peak_bytes, rel=0.01)
    # Machine-dependent: oneDNN's convolution kernels also take scratch memory that is
    # no tensor, which the plan leaves out. Its size depends on the instruction set,
    # the thread count and the shapes: under 1 MiB on an AVX-512 EPYC, but on AVX2 CPUs
    # the weight-gradient kernel of a convolution whose feature map is 2x2 or smaller
    # keeps about 4 copies of its weight per thread (ResNet-18 at 64x64, layer4: +23 MB
    # at one thread, +61 MB at two; ONEDNN_MAX_CPU_ISA=AVX2 reproduces it). So the
    # allocator may exceed the plan by up to 5 % plus 4 x threads x the largest weight.
    extra = measured.allocator_peak_bytes - plan.peak_bytes
    bound = 0.05 * plan.peak_bytes + 4 * torch.get_num_threads() * largest_conv_weight_bytes(net)
    assert -0.01 * plan.peak_bytes <= extra <= bound


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_onednn_avx2_scratch_stays_within_the_stated_bound(threads):
    # The case of the issue (an AVX2 EPYC: -13.7 % at one thread, -29.8 % at two), on any
    # x86-64 CPU: oneDNN limited to AVX2 in a fresh process.
    import os
    import subprocess
    import sys

    code = (
        "import json, torch; from cnnscope.api import plan_memory; "
        "from cnnscope.benchmark.step_memory import measure_real; from cnnscope.models import resolve; "
        f"torch.set_num_threads({threads}); p = plan_memory('resnet18', (3, 64, 64), 2); "
        "torch.manual_seed(0); m = measure_real(resolve('resnet18').build('cpu'), (3, 64, 64), 2, 'cpu'); "
        "print(json.dumps([p.peak_bytes, m.allocator_peak_bytes, m.live_peak_bytes]))")
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    plan, allocator, live = json.loads(out.strip().splitlines()[-1])
    assert plan == live
    weight = 512 * 512 * 3 * 3 * F32  # layer4's 3x3 convolutions
    assert 0 <= allocator - plan <= 0.05 * plan + 4 * threads * weight


class TinyViT(nn.Module):
    """Two pre-norm attention blocks over 256 tokens of 64 channels in 4 heads (head dim
    16), as timm's ViT writes them: one qkv projection, F.scaled_dot_product_attention."""

    def __init__(self, tokens=256, dim=64, heads=4):
        super().__init__()
        self.heads = heads
        self.embed = nn.Linear(16, dim)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(2))
        self.qkv = nn.ModuleList(nn.Linear(dim, 3 * dim) for _ in range(2))
        self.proj = nn.ModuleList(nn.Linear(dim, dim) for _ in range(2))
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        x = self.embed(x)
        b, n, c = x.shape
        for norm, qkv, proj in zip(self.norms, self.qkv, self.proj):
            q, k, v = qkv(norm(x)).reshape(b, n, 3, self.heads, c // self.heads) \
                .permute(2, 0, 3, 1, 4).unbind(0)
            y = torch.nn.functional.scaled_dot_product_attention(q, k, v)
            x = x + proj(y.transpose(1, 2).reshape(b, n, c))
        return self.head(x.mean(1))


def tiny_vit():
    return ModelSource(name="tiny_vit", input_size=(256, 16), builder=TinyViT)


@pytest.mark.parametrize("batch", [2, 4])
def test_attention_is_planned_as_the_cpu_runs_it(batch):
    # A real CPU step runs _scaled_dot_product_flash_attention_for_cpu, which keeps a
    # log-sum-exp, not the batch x 4 x 256 x 256 probabilities, plus per-thread blocks
    # while it runs. The allocator's own events are the reference; what is left (256 bytes
    # per backward call, a buffer of the kernel) is below 0.1 %.
    plan = plan_memory(tiny_vit(), batch=batch)
    assert plan.attention == (("flash", 2),)
    torch.manual_seed(0)
    real = measure_real(TinyViT(), (256, 16), batch, "cpu")
    assert plan.peak_bytes == pytest.approx(real.allocator_peak_bytes, rel=0.001)


def test_forced_math_attention_matches_a_real_math_step():
    plan = plan_memory(tiny_vit(), batch=2, attention="math")
    assert plan.attention == (("math", 2),)
    torch.manual_seed(0)
    real = measure_real(TinyViT(), (256, 16), 2, "cpu", attention="math")
    assert plan.peak_bytes == pytest.approx(real.allocator_peak_bytes, rel=0.001)
    # the math path keeps the probabilities: far more than the fused kernel
    probabilities = 2 * 4 * 256 * 256 * F32
    assert plan.peak_bytes > plan_memory(tiny_vit(), batch=2).peak_bytes + probabilities


def test_attention_kernel_is_named_and_follows_the_device():
    assert plan_memory(tiny_vit(), batch=2, device="cuda").attention == (("efficient", 2),)
    bf16 = plan_memory(tiny_vit(), batch=2, device="cuda:sm80", dtype="bf16")
    assert bf16.attention == (("flash", 2),)
    data = bf16.to_dict()
    assert data["device"] == "cuda:sm80"
    assert data["attention"] == [{"kernel": "flash", "op": "_scaled_dot_product_flash_attention",
                                  "calls": 2}]


def test_forcing_a_kernel_the_device_lacks_is_a_user_error():
    with pytest.raises(InvalidOptionError, match="efficient attention runs only on CUDA"):
        plan_memory(tiny_vit(), batch=2, attention="efficient")


def test_inference_on_the_cpu_also_holds_onednn_weight_copies():
    # In inference oneDNN reorders a convolution's weight into its blocked layout on
    # every call, in a buffer that is not a tensor: the allocator sees up to one conv
    # weight more than any tensor holds (ResNet-18's largest: 512 x 512 x 3 x 3 floats).
    plan = plan_memory("resnet18", (3, 64, 64), 2, inference=True)
    torch.manual_seed(0)
    measured = measure_real(resolve("resnet18").build("cpu"), (3, 64, 64), 2, "cpu",
                            inference=True)
    assert plan.peak_bytes == pytest.approx(measured.live_peak_bytes, rel=0.01)
    assert 0 <= measured.allocator_peak_bytes - plan.peak_bytes <= 512 * 512 * 3 * 3 * F32


def test_fit_finds_the_largest_batch_under_the_budget():
    # The search is the subject, not the network: lenet5's plans cost 0.04 s each,
    # ResNet-18's 0.2 s (the search makes ~16).
    one = plan_memory("lenet5", None, 1).peak_bytes
    budget = 3 * one  # some batch > 1 fits, a large one does not
    plan = fit_batch("lenet5", budget)
    assert plan.fit_batch >= 2 and plan.batch == plan.fit_batch
    assert plan.peak_bytes <= budget
    assert plan_memory("lenet5", None, plan.fit_batch + 1).peak_bytes > budget
    assert all((p <= budget) == (b <= plan.fit_batch) for b, p in plan.tried)


def test_fit_too_small_is_a_user_error():
    with pytest.raises(InvalidOptionError, match="even at batch 1"):
        fit_batch("resnet18", "1MiB")


@pytest.mark.parametrize("text,expected", [("80GiB", 80 * 2**30), ("24GB", 24 * 10**9),
                                           ("512MiB", 512 * 2**20), ("1000", 1000),
                                           ("1.5GiB", 3 * 2**29)])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected




def test_cli_json_has_peak_bytes_and_breakdown(run):
    res = run("memory", "lenet5", "--batch", "2", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert isinstance(data["peak_bytes"], int)
    assert set(data["breakdown"]) == set(CATEGORIES)
    assert sum(data["breakdown"].values()) == data["peak_bytes"]


def test_cli_table_and_fit(run):
    res = run("memory", "lenet5", "--fit", "4MiB")  # a small network: the search is cheap
    assert res.exit_code == 0, res.output
    assert "largest batch that fits 4.00 MiB" in res.stdout
    assert "where the activation memory lives" in res.stdout
    assert "peak: most tensor bytes alive at once" in res.stdout  # the brief convention
    assert "Convention: peak" in run("memory", "lenet5", "--explain").stdout


@pytest.mark.parametrize("args,message", [
    (["--dtype", "int8"], "unknown dtype 'int8'"),
    (["--optimizer", "lion"], "unknown optimizer 'lion'"),
    (["--fit", "lots"], "malformed memory size 'lots'"),
    (["--fit", "1KiB"], "does not fit in 1.00 KiB even at batch 1"),
    (["--input", "3x8x8"], "cannot run a training step on input 1x3x8x8: Expected more than 1 value"),
    (["--freeze", "nope"], "--freeze 'nope' names no parameter"),
    (["--plot", "x.gif"], "cannot plot to 'x.gif'"),
    (["--attention", "fast"], "unknown --attention 'fast'"),
    (["--device", "tpu"], "unknown --device 'tpu'"),
])
def test_cli_bad_input_is_one_line_exit_2(run, args, message, tmp_path):
    out = tmp_path / "m.json"
    res = run("memory", "resnet18", "-o", str(out), *args)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("cnnscope: error: ") and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_plot_writes_png(run, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "m.png"
    res = run("memory", "lenet5", "--plot", str(png))
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("text, said", [
    ("1" + "0" * 400 + "GiB", "more than 1 EiB (2**60 bytes)"),  # float() of it is inf: an OverflowError
    ("1" + "0" * 5000 + "B", "more than 1 EiB (2**60 bytes)"),  # past int()'s digit limit
    ("0." + "0" * 400 + "1GiB", "is not positive"),
    ("2EiB", "malformed memory size"),
    ("1e400GiB", "malformed memory size"),
])
def test_fit_sizes_out_of_any_range_are_one_line(run, text, said):
    res = run("memory", "lenet5", "--fit", text)
    assert res.exit_code == 2 and res.stdout == "", res.output
    assert said in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_parse_bytes_is_exact():
    from cnnscope.analysis.memory import MAX_BUDGET, parse_bytes

    assert parse_bytes("1.5GiB") == 3 * 2**29
    assert parse_bytes("0.1KB") == 100  # 0.1 * 1000 exactly, not 100.00000000000001
    assert parse_bytes(f"{2**60}B") == MAX_BUDGET == 2**60


def _fake_plans(peak_of):
    from cnnscope.analysis.memory import MemoryPlan

    def plan_at(batch):
        return MemoryPlan(model="m", input_size=(3, 8, 8), batch=batch, dtype="fp32",
                          optimizer="sgd", inference=False, channels_last=False,
                          peak_bytes=peak_of(batch), breakdown={}, peak_phase="forward",
                          peak_op="x", saved_by_module=(), params=0, trainable_params=0)
    return plan_at


@pytest.mark.parametrize("limit", [1 << 20, 1000, 7])
def test_fit_beyond_every_batch_says_so_and_names_the_limit(limit):
    from cnnscope.analysis.memory import largest_batch_within

    plan = largest_batch_within(_fake_plans(lambda b: 100 * b), 100 * limit, max_batch=limit)
    assert plan.fit_batch == limit and plan.every_batch_fits and plan.search_limit == limit
    # One byte less: batch limit no longer fits, limit - 1 is the largest that does.
    plan = largest_batch_within(_fake_plans(lambda b: 100 * b), 100 * limit - 1, max_batch=limit)
    assert plan.fit_batch == limit - 1 and not plan.every_batch_fits


def test_fit_beyond_every_batch_on_the_command_line(run, monkeypatch):
    # One search (~2 s: lenet5 planned up to batch 2**20) for both layouts below: the
    # table and the JSON render the same plan; the command still calls api.fit_batch.
    import cnnscope.api as api

    searched, search = {}, api.fit_batch

    def once(*args, **kwargs):
        key = repr((args, sorted(kwargs.items())))
        if key not in searched:
            searched[key] = search(*args, **kwargs)
        return searched[key]

    monkeypatch.setattr(api, "fit_batch", once)
    res = run("memory", "lenet5", "--fit", "100TiB")
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())
    assert "every batch up to the search limit 1,048,576 fits 100.00 TiB" in text
    assert "largest batch that fits" not in text
    res = run("memory", "lenet5", "--fit", "100TiB", "-f", "json")
    fit = json.loads(res.stdout)["fit"]
    assert fit["every_batch_fits"] is True and fit["search_limit"] == 2**20 == fit["batch"]


@pytest.mark.parametrize("text, parsed", [("cpu", ("cpu", (0, 0))), ("cuda", ("cuda", (9, 0))),
                                          ("cuda:sm80", ("cuda", (8, 0))),
                                          ("CUDA:SM120", ("cuda", (12, 0)))])
def test_memory_devices_name_a_cpu_or_a_cuda_architecture(text, parsed):
    from cnnscope.analysis.memory import parse_device

    assert parse_device(text) == parsed


@pytest.mark.parametrize("text", ["cuda:sm999", "cuda:sm20", "cuda:sm", "cuda:0", "mps", "cuda:sm8x"])
def test_a_device_that_is_no_known_architecture_is_refused(text):
    from cnnscope.analysis.memory import parse_device
    from cnnscope.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="unknown --device"):
        parse_device(text)
