"""The leaf memo replays a measured layer; a replay must equal running the layer.

``trace_module(memoize=False)`` runs every leaf layer's forward through the dispatch
mode: it is the reference the memoized trace is checked against, record by record.
"""

import pytest
from torch import nn

from cnnscope.trace.meta import building_on
from cnnscope.trace.tracer import trace_module
from cnnscope.zoo import get_model, list_models, model_info

# Families with repeated identical layers (most replays), in-place layers, interpolation,
# grouped and transposed convolutions, routing matmuls, LRN, gates.
QUICK = ["lenet5", "alexnet", "resnet50", "resnet50_v1", "densenet121", "googlenet",
         "inception_v3", "mobilenet_v2", "xception", "se_resnet50", "hrnetv2_w18", "unet",
         "capsnet", "highway", "residual_attention_56", "nin"]


def _both(name: str, train: bool = False):
    with building_on("meta"):
        net = get_model(name)
    size = model_info(name).input_size
    return (trace_module(net, size, 2, model_name=name, train=train),
            trace_module(net, size, 2, model_name=name, train=train, memoize=False))


def _assert_same(fast, slow):
    assert fast.totals == slow.totals
    assert fast.output_shapes == slow.output_shapes
    assert fast.unsupported == slow.unsupported
    assert len(fast.layers) == len(slow.layers)
    for a, b in zip(fast.layers, slow.layers):
        assert a == b, (a.name, b.name)


@pytest.mark.parametrize("name", QUICK)
def test_memoized_trace_equals_running_every_layer(name):
    _assert_same(*_both(name))


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "mobilenet_v2", "googlenet"])
def test_memoized_trace_equals_running_every_layer_in_train_mode(name):
    _assert_same(*_both(name, train=True))


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models() if n not in QUICK])
def test_memoized_trace_equals_running_every_layer_whole_zoo(name):
    _assert_same(*_both(name))


def test_layers_differing_only_in_an_unprinted_option_are_not_confused():
    # nn.Upsample's repr omits align_corners; the memo key must still tell them apart.
    net = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                        nn.Upsample(size=(16, 16), mode="bilinear", align_corners=True))
    with building_on("meta"):
        net = net.to("meta")
    layers = trace_module(net, (3, 8, 8)).layers
    extras = [dict(r.extra).get("align_corners") for r in layers]
    assert extras == [False, True]


def test_trace_restores_forward_and_each_modules_training_flag():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            return self.bn(self.conv(x))

    net = Custom().to("meta")
    net.train()
    net.bn.eval()  # a frozen batch norm inside a training model
    own = net.conv.forward
    net.conv.forward = own  # an instance-level forward set by the user
    trace_module(net, (3, 8, 8))
    assert net.training and not net.bn.training and net.conv.training
    assert "forward" not in net.__dict__ and "forward" not in net.bn.__dict__
    assert net.conv.__dict__["forward"] is own


def test_registering_a_formula_empties_the_memo_shared_between_traces():
    from cnnscope.ops.cost import Cost
    from cnnscope.ops.registry import FORMULAS

    net = nn.Sequential(nn.GLU(dim=1)).to("meta")
    assert trace_module(net, (8, 4, 4)).unsupported == (("glu", 1),)
    assert trace_module(net, (8, 4, 4)).unsupported == (("glu", 1),)  # replayed
    FORMULAS["glu"] = lambda args, outs: Cost(0, 0)
    try:
        report = trace_module(net, (8, 4, 4))
        assert report.unsupported == () and report.layers[0].unsupported == ()
    finally:
        del FORMULAS["glu"]
    assert trace_module(net, (8, 4, 4)).unsupported == (("glu", 1),)


class _Block(nn.Module):
    """A custom block whose behaviour depends on a private attribute."""

    def __init__(self, repeat):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self._repeat = repeat

    def forward(self, x):
        for _ in range(self._repeat):
            x = self.conv(x)
        return x + 1


def test_identical_blocks_are_replayed_and_different_ones_are_not():
    from cnnscope.trace import tracer

    net = nn.Sequential(_Block(1), _Block(1), _Block(2), _Block(1)).to("meta")
    tracer.clear_memo()
    fast = trace_module(net, (4, 8, 8))
    slow = trace_module(net, (4, 8, 8), memoize=False)
    _assert_same(fast, slow)
    assert len(tracer.BLOCKS) >= 2  # _Block(1) and _Block(2) recorded apart
    conv_macs = 8 * 8 * 4 * 4 * 9
    assert fast.totals.macs == (1 + 1 + 2 + 1) * conv_macs
    assert [r.name for r in fast.layers if r.type == "Conv2d"] == \
        ["0.conv", "1.conv", "2.conv", "2.conv#2", "3.conv"]
    assert fast.totals.params == 4 * 4 * 9 * 4
    again = trace_module(net, (4, 8, 8))  # the whole model replayed from the memo
    _assert_same(again, slow)


def test_a_module_shared_between_blocks_is_not_replayed_wrongly():
    shared = nn.Conv2d(4, 4, 3, padding=1, bias=False)

    class Uses(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = shared

        def forward(self, x):
            return self.conv(x)

    net = nn.Sequential(Uses(), Uses()).to("meta")
    _assert_same(trace_module(net, (4, 8, 8)), trace_module(net, (4, 8, 8), memoize=False))


def test_a_warm_process_replays_every_zoo_model_record_for_record():
    """The second analysis of a model in one process comes from the memos (leaf and
    block): every record, every field, must equal the first, cold one."""
    import cnnscope
    from cnnscope.trace.tracer import clear_memo
    from cnnscope.zoo import list_models

    for name in list_models():
        clear_memo()
        cold = cnnscope.analyze(name)
        warm = cnnscope.analyze(name)
        assert warm.layers == cold.layers, name
        assert warm.totals == cold.totals, name
