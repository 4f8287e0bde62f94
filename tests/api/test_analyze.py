"""cnnscope.analyze on names and on built modules; ModelReport exports."""

import io
import json

import pandas as pd
import pytest
import torch
from torch import nn

import cnnscope
from cnnscope.errors import InvalidInputSizeError, InvalidOptionError, TraceError


def small_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 10))


# Conv 3->4 3x3 with bias, Linear 64->10 with bias.
SMALL_PARAMS = 3 * 4 * 3 * 3 + 4 + 64 * 10 + 10
# On 1x3x8x8: conv 4x8x8 outputs x 27 MACs, linear 64 x 10.
SMALL_MACS = 4 * 8 * 8 * 3 * 3 * 3 + 64 * 10


def test_cpu_module_is_traced_on_meta_stand_ins_and_left_unchanged():
    torch.manual_seed(0)
    net = small_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ptrs = [p.data_ptr() for p in net.parameters()]
    net.train()
    report = cnnscope.analyze(net, (3, 8, 8))
    assert report.device == "meta"
    assert report.totals.params == SMALL_PARAMS
    assert report.totals.macs == SMALL_MACS
    assert report.output_shapes == ((1, 10),)
    # Nothing changed: same tensors, same values, same mode, no hooks left behind.
    assert [p.data_ptr() for p in net.parameters()] == ptrs
    assert all(t.device.type == "cpu" for t in [*net.parameters(), *net.buffers()])
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def test_stand_ins_are_swapped_back_when_the_trace_fails():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    params = [id(p) for p in net.parameters()]
    buffers = [id(b) for b in net.buffers()]
    with pytest.raises(TraceError, match="failed at layer 0"):
        cnnscope.analyze(net, (5, 8, 8))  # wrong channel count: the first conv fails
    assert [id(p) for p in net.parameters()] == params
    assert [id(b) for b in net.buffers()] == buffers
    assert all(t.device.type == "cpu" for t in [*net.parameters(), *net.buffers()])


def test_frozen_and_shared_parameters_keep_their_counts():
    net = small_net()
    net[0].weight.requires_grad_(False)

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(5, 5, bias=False)
            self.b = nn.Linear(5, 5, bias=False)
            self.b.weight = self.a.weight  # one parameter, used twice

        def forward(self, x):
            return self.b(self.a(x))

    frozen = cnnscope.analyze(net, (3, 8, 8)).totals
    assert frozen.params == SMALL_PARAMS
    assert frozen.trainable_params == SMALL_PARAMS - 3 * 4 * 3 * 3
    tied = cnnscope.analyze(Tied(), (5,)).totals
    assert tied.params == 5 * 5
    assert tied.macs == 2 * 5 * 5


def test_meta_module_is_traced_directly():
    with torch.device("meta"):
        net = small_net()
    assert cnnscope.analyze(net, "3x8x8").totals.params == SMALL_PARAMS


def test_module_traced_where_it_lives_when_asked():
    net = small_net()
    report = cnnscope.analyze(net, (3, 8, 8), device="cpu")
    assert report.device == "cpu" and report.totals.macs == SMALL_MACS


def test_module_on_another_device_than_asked_is_refused():
    with torch.device("meta"):
        net = small_net()
    with pytest.raises(InvalidOptionError, match="lives on meta, not on cpu"):
        cnnscope.analyze(net, (3, 8, 8), device="cpu")


def test_kwargs_with_a_built_module_are_refused():
    with pytest.raises(InvalidOptionError):
        cnnscope.analyze(small_net(), (3, 8, 8), width=3)


def test_bad_input_string():
    with pytest.raises(InvalidInputSizeError):
        cnnscope.analyze(small_net(), "3x8x8x8x8")


def test_meta_copy_shares_structure_but_no_storage():
    net = small_net()
    clone = cnnscope.meta_copy(net)
    assert all(p.device.type == "meta" for p in clone.parameters())
    assert [p.shape for p in clone.parameters()] == [p.shape for p in net.parameters()]
    assert [p.requires_grad for p in clone.parameters()] == [p.requires_grad for p in net.parameters()]


def test_zoo_model_with_builder_kwargs():
    # ResNet-18's classifier is Linear(512, num_classes): 1000 classes by default.
    default = cnnscope.analyze("resnet18").totals.params
    ten = cnnscope.analyze("resnet18", num_classes=10)
    assert default - ten.totals.params == (512 * 1000 + 1000) - (512 * 10 + 10)
    assert ten.output_shapes == ((1, 10),)


def test_to_pandas_has_one_row_per_visible_layer_with_exact_ints():
    report = cnnscope.analyze(small_net(), (3, 8, 8))
    frame = report.to_pandas()
    assert list(frame["type"]) == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert frame["params"].sum() == SMALL_PARAMS
    assert frame["macs"].sum() == SMALL_MACS
    assert frame.loc[0, "kernel_size"] == (3, 3)
    assert frame.loc[0, "output_shape"] == (1, 4, 8, 8)
    assert frame.attrs["model"] == "Sequential"


def test_to_csv_round_trips_through_pandas(tmp_path):
    report = cnnscope.analyze(small_net(), (3, 8, 8))
    text = report.to_csv(str(tmp_path / "layers.csv"))
    assert (tmp_path / "layers.csv").read_text() == text
    frame = pd.read_csv(io.StringIO(text))
    assert frame["params"].sum() == SMALL_PARAMS
    assert frame.loc[0, "output_shape"] == "1x4x8x8"
    assert frame.loc[0, "kernel_size"] == "3x3"


def test_to_json_has_the_totals(tmp_path):
    report = cnnscope.analyze(small_net(), (3, 8, 8))
    data = json.loads(report.to_json(str(tmp_path / "r.json")))
    assert data["totals"]["params"] == SMALL_PARAMS
    assert data["totals"]["macs"] == SMALL_MACS
    assert json.loads((tmp_path / "r.json").read_text()) == data


def test_threads_analysing_one_module_at_once_get_the_same_answer():
    # Traces swap forwards and tensors in and out; they take turns, so each thread gets
    # the single-threaded answer and the module is left as it was.
    import threading

    net = small_net()
    reports, errors = [], []

    def work():
        try:
            for _ in range(5):
                reports.append(cnnscope.analyze(net, (3, 8, 8)))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(reports) == 20
    assert {(r.totals.params, r.totals.macs) for r in reports} == {(SMALL_PARAMS, SMALL_MACS)}
    assert all(p.device.type == "cpu" for p in net.parameters())
    assert all("forward" not in m.__dict__ for m in net.modules())
