"""``cnnscope graph`` on torchvision and timm models (slow: they need the extended
environment; skipped cleanly where torchvision or timm is missing).

Same figures as the zoo's: ResNet (He et al. 2016, Table 1) conv2_x bottleneck
[1x1, 64; 3x3, 64; 1x1, 256] at 56x56 with the projection shortcut; the SE block (Hu et al.
2018) squeezes 256 channels to 256 / 16 and gates the residual branch by a multiply.
"""

from __future__ import annotations

import pytest

import cnnscope

pytestmark = pytest.mark.slow


def _into(g, name):
    return sorted((g.name_of(e.source), e.shape) for e in g.inputs_of(name))


def test_torchvision_resnet50_bottleneck():
    pytest.importorskip("torchvision")
    g = cnnscope.graph("torchvision:resnet50", focus="layer1.0")
    assert _into(g, "layer1.0.add") == [("layer1.0.bn3", (256, 56, 56)),
                                        ("layer1.0.downsample.1", (256, 56, 56))]
    assert _into(g, "layer1.0.conv1") == [("maxpool", (64, 56, 56))]
    # torchvision's Bottleneck calls one ReLU three times: three nodes, one per call.
    assert [n.name for n in g.nodes if n.type == "ReLU"] == \
        ["layer1.0.relu", "layer1.0.relu#2", "layer1.0.relu#3"]
    repeats = cnnscope.graph("torchvision:resnet50", depth=2)
    assert [(n.name, n.repeat) for n in repeats.nodes if n.name.startswith("layer3")] == \
        [("layer3.0", 1), ("layer3.1-5", 5)]


def test_timm_seresnet50_gate_is_a_multiply():
    pytest.importorskip("timm")
    g = cnnscope.graph("timm:seresnet50", focus="layer1.0")
    (mul,) = [n for n in g.nodes if n.type == "multiply"]
    assert sorted(e.shape for e in g.inputs_of(mul.name)) == [(256, 1, 1), (256, 56, 56)]
    assert [e.shape for e in g.outputs_of("layer1.0.se.fc1")] == [(256 // 16, 1, 1)]
    assert not [n for n in g.nodes if n.type == "Identity"]  # timm's empty slots pass through
    assert _into(g, "layer1.0.add") == [("layer1.0.downsample.1", (256, 56, 56)),
                                        ("layer1.0.se.mul", (256, 56, 56))]
