"""cnnscope.compare: depth, peak activation memory, ratios, dtype bytes."""

import json

import pytest
import torch
from torch import nn

import cnnscope
import cnnscope.api as api
from cnnscope.analysis.compare import (
    compare_reports,
    dtype_bytes,
    format_ratio,
    peak_activation,
    weighted_depth,
)
from cnnscope.errors import InvalidOptionError, UnknownModelError

# Depth in weighted layers as the papers count it: AlexNet 5 conv + 3 fc (Krizhevsky
# et al. 2012); VGG-16 13 conv + 3 fc (Simonyan & Zisserman 2015, configuration D);
# GoogLeNet "22 layers deep when counting only layers with parameters" (Szegedy et al.
# 2015); ResNet-50 1 + 3 x (3 + 4 + 6 + 3) + 1 = 50 (He et al. 2016, Table 1).
PAPER_DEPTH = {"alexnet": 8, "vgg16": 13 + 3, "googlenet": 22, "resnet50": 1 + 3 * (3 + 4 + 6 + 3) + 1}


@pytest.mark.parametrize("name", sorted(PAPER_DEPTH))
def test_depth_matches_the_papers(name):
    assert weighted_depth(cnnscope.analyze(name)) == PAPER_DEPTH[name]


def sequential():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 10))


def test_peak_activation_of_a_sequential_net_by_arithmetic():
    # 1x3x8x8 input (192 elements) -> conv 4x8x8 (256) -> relu (256) -> pool 4x4x4 (64)
    # -> flatten (a view: no memory) -> linear (10). Live tensors per step:
    #   conv: input 192 + 256 = 448;  relu: 256 + 256 = 512;  pool: 256 + 64 = 320;
    #   flatten: 64;  linear: 64 + 10 = 74.  Peak: 512 elements, at the ReLU.
    report = cnnscope.analyze(sequential(), (3, 8, 8))
    peak = peak_activation(report, 4)
    assert peak.elements == 512
    assert peak.bytes == 512 * 4
    assert peak.layer == "1"
    assert peak_activation(report, 2).bytes == 512 * 2
    batch2 = cnnscope.analyze(sequential(), (3, 8, 8), batch=2)
    assert peak_activation(batch2, 4).elements == 2 * 512


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        return x + self.relu(self.conv(x))


def test_peak_activation_keeps_the_skip_alive_and_leaves_the_input_out():
    # 1x3x4x4: every tensor is 48 elements; the input x is the caller's and not counted.
    # conv: y = 48; relu: y + z = 96; add: z + out = 96.
    report = cnnscope.analyze(Residual(), (3, 4, 4))
    assert peak_activation(report, 1).elements == 2 * 48


class SkipFromAConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 3, 1)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        s = self.stem(x)
        return s + self.relu(self.conv(s))


def test_peak_activation_keeps_a_skip_tensor_alive():
    # stem: s = 48; conv: s + y = 96; relu: s (still needed by the add) + y + z = 144;
    # add: s + z + out = 144.
    report = cnnscope.analyze(SkipFromAConv(), (3, 4, 4))
    assert peak_activation(report, 1).elements == 3 * 48


def test_peak_activations_mean_the_same_in_compare_and_memory():
    # VGG-16 at 1x3x224x224 (Simonyan & Zisserman, configuration D): the largest
    # activations are conv1_1's output and its ReLU's (not in place), 64 x 224 x 224
    # floats each, alive together while the ReLU runs. The input, 3 x 224 x 224 floats,
    # is the caller's: compare leaves it out, memory --inference shows it as its own row.
    largest = 64 * 224 * 224 * 4
    assert api.compare(["vgg16"]).models[0].peak.bytes == 2 * largest
    plan = api.plan_memory("vgg16", inference=True)
    assert plan.breakdown["transient"] == 2 * largest
    assert plan.breakdown["input"] == 3 * 224 * 224 * 4


class TwoPaths(nn.Module):
    """Deep branch: 2 convs; shallow branch: 1 conv; then a linear layer: depth 3."""

    def __init__(self):
        super().__init__()
        self.a1 = nn.Conv2d(3, 3, 1)
        self.a2 = nn.Conv2d(3, 3, 1)
        self.b1 = nn.Conv2d(3, 3, 1)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        y = self.a2(self.a1(x)) + self.b1(x)
        return self.fc(y.mean((2, 3)))


def test_depth_is_the_longest_weighted_path():
    assert weighted_depth(cnnscope.analyze(TwoPaths(), (3, 4, 4))) == 3


def test_ratios_against_the_first_model():
    c = cnnscope.compare([sequential(), TwoPaths()], (3, 8, 8))
    a, b = c.models
    tp_params = 3 * (3 * 3 + 3) + 3 * 2 + 2
    assert b.totals.params == tp_params
    assert c.ratios(b)["params"] == pytest.approx(tp_params / (3 * 4 * 9 + 4 + 64 * 10 + 10))
    assert c.ratios(a)["params"] == 1.0
    assert c.ratio_line(b).startswith("TwoPaths: ") and c.ratio_line(b).endswith(" of Sequential")


def test_param_bytes_follow_the_dtype():
    for dtype, nbytes in (("float32", 4), ("fp16", 2), ("bfloat16", 2), ("int8", 1)):
        c = cnnscope.compare([sequential()], (3, 8, 8), dtype=dtype)
        m = c.models[0]
        assert m.param_bytes == m.totals.params * nbytes
        assert m.peak.bytes == 512 * nbytes
    with pytest.raises(InvalidOptionError, match="unknown dtype"):
        dtype_bytes("float13")


def test_unknown_name_among_several_fails_before_any_tracing(monkeypatch):
    traced = []
    monkeypatch.setattr(api.compare_models, "analyze", lambda *a, **k: traced.append(a))
    with pytest.raises(UnknownModelError, match="nosuchnet"):
        cnnscope.compare(["vgg16", "nosuchnet"])
    assert traced == []


def test_json_gives_one_object_per_model_with_the_params_totals_keys():
    c = cnnscope.compare(["lenet5", "nin"])
    data = json.loads(json.dumps(c.to_dict()))
    params_keys = set(cnnscope.analyze("lenet5").to_dict()["totals"])
    assert [m["model"] for m in data["models"]] == ["lenet5", "nin"]
    for m in data["models"]:
        assert set(m["totals"]) == params_keys
        assert {"depth", "receptive_field", "peak_activation_bytes", "param_bytes",
                "ratio_to_first"} <= set(m)


def test_same_model_twice_gets_told_apart():
    c = compare_reports([cnnscope.analyze("lenet5"), cnnscope.analyze("lenet5")])
    assert [m.model for m in c.models] == ["lenet5", "lenet5#2"]


def test_format_ratio():
    assert format_ratio(6_998_552 / 138_357_544) == "0.05x"
    assert format_ratio(1.0) == "1.00x"
    assert format_ratio(12.34) == "12.3x"
    assert format_ratio(0.00123) == "0.0012x"


def test_receptive_field_of_the_last_feature_map():
    # VGG-16's last conv-pool stack: 212 pixels (Araujo et al., Distill 2019, Table 1
    # lists 212 for vgg_16). The comparison turns a failed analysis into a note and a
    # "-"; that must fail here, not pass.
    c = cnnscope.compare(["vgg16"])
    assert not any("receptive field" in n for n in c.notes), c.notes
    assert tuple(c.models[0].receptive_field) == (212, 212)


def test_a_failing_receptive_field_is_a_note_naming_the_error(monkeypatch):
    # The note path the test above refuses, shown working: the comparison goes on.
    def broken(report):
        raise RuntimeError("rule missing")

    monkeypatch.setattr("cnnscope.analysis.receptive_field.last_feature_map_rf", broken)
    c = cnnscope.compare(["lenet5"])
    assert c.models[0].receptive_field is None
    assert any("receptive field failed (RuntimeError: rule missing)" in n for n in c.notes), c.notes


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bench figures are checked on cpu below")
def test_bench_figures_on_cuda():
    c = cnnscope.compare(["lenet5"], bench=True, device="cuda", bench_options={"iters": 5})
    assert c.models[0].bench.latency_ms > 0


def test_bench_figures_on_cpu():
    c = cnnscope.compare(["lenet5"], bench=True, device="cpu", bench_options={"iters": 5})
    b = c.models[0].bench
    assert b.latency_ms > 0 and b.throughput == pytest.approx(1000.0 / b.latency_ms)
