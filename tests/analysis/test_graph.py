"""``cnnscope.graph``: the papers' figures, checked from the graph data (nodes, edges,
shapes), never from pixels.

Expected shapes come from the papers, at their input sizes:
- GoogLeNet (Szegedy et al. 2014), Table 1, row inception(3a) (seeds/003): 28x28 output,
  #1x1 64, #3x3 reduce 96, #3x3 128, #5x5 reduce 16, #5x5 32, pool proj 32;
- ResNet (He et al. 2016), Table 1, conv2_x of the 50-layer net (seeds/003):
  [1x1, 64; 3x3, 64; 1x1, 256] x3 at 56x56;
- DenseNet (Huang et al. 2017), Table 1 (seeds/003): dense block (1) is 6 x [1x1, 3x3]
  at 56x56 with growth rate k = 32; transition (1) is a 1x1 conv and a 2x2 average pool
  with stride 2 to 28x28, compression 0.5 (DenseNet-BC);
- U-Net (Ronneberger et al. 2015), Fig. 1 (seeds/000): 572x572 in, 388x388 out, four
  "copy and crop" skips from 568, 280, 136 and 64 to 392, 200, 104 and 56;
- HRNetV2 (Wang et al. 2020): stage n has n parallel streams of C, 2C, 4C, 8C channels at
  1/4, 1/8, 1/16, 1/32 of the input (C = 18 for W18).
"""

from __future__ import annotations

import pytest

import cnnscope
from cnnscope.analysis.graph import build_graph
from cnnscope.errors import CnnscopeError


def _chw(c, hw):
    return (c, hw, hw)


def _edges_into(g, name):
    return sorted((g.name_of(e.source), e.shape) for e in g.inputs_of(name))


@pytest.fixture(scope="module")
def googlenet():
    return cnnscope.analyze("googlenet")


@pytest.fixture(scope="module")
def resnet50():
    return cnnscope.analyze("resnet50")


# ---------------------------------------------------------------------- GoogLeNet


def test_inception_3a_is_four_branches_joined_by_one_concat(googlenet):
    g = build_graph(googlenet, depth=None, focus=["inception3a"])
    (source,) = [n for n in g.nodes if n.kind == "input"]
    assert source.name == "maxpool2"
    branch_heads = g.outputs_of("maxpool2")
    assert len(branch_heads) == 4
    assert {e.shape for e in branch_heads} == {_chw(192, 28)}
    (concat,) = [n for n in g.nodes if n.kind == "merge"]
    assert concat.type == "concat"
    into = [e.shape for e in g.inputs_of(concat.name)]
    # Table 1: #1x1 64, #3x3 128, #5x5 32, pool proj 32, all at 28x28.
    assert sorted(into) == sorted([_chw(64, 28), _chw(128, 28), _chw(32, 28), _chw(32, 28)])
    (out,) = g.outputs_of(concat.name)
    assert out.shape == _chw(64 + 128 + 32 + 32, 28)
    assert g.name_of(out.target) == "to inception3b"


def test_inception_3a_branches_have_the_papers_windows(googlenet):
    g = build_graph(googlenet, depth=None, focus=["inception3a"])
    by_id = {n.id: n for n in g.nodes}
    nxt = {}
    for e in g.edges:
        nxt.setdefault(e.source, []).append(e)
    branches = []
    for head in g.outputs_of("maxpool2"):
        path, node = [], by_id[head.target]
        while node.kind != "merge":
            if node.detail:  # convolutions and pools: (type, window, output channels)
                path.append((node.type, node.detail, nxt[node.id][0].shape[0]))
            node = by_id[nxt[node.id][0].target]
        branches.append(path)
    assert sorted(branches) == sorted([
        [("Conv2d", "1x1", 64)],
        [("Conv2d", "1x1", 96), ("Conv2d", "3x3", 128)],     # 3x3 reduce, 3x3
        [("Conv2d", "1x1", 16), ("Conv2d", "5x5", 32)],      # 5x5 reduce, 5x5
        [("MaxPool2d", "3x3", 192), ("Conv2d", "1x1", 32)],  # pool, pool proj
    ])


def test_depth_one_is_the_stages_in_order(googlenet):
    g = build_graph(googlenet, depth=1)
    names = [n.name for n in g.nodes]
    assert names.index("inception3a") < names.index("inception3b") < names.index("inception5b")
    assert _edges_into(g, "inception3b") == [("inception3a", _chw(256, 28))]
    assert g.node("inception3a").kind == "block" and g.node("inception3a").type == "Inception"
    # Every parameter the forward used is on exactly one node.
    assert sum(n.params for n in g.nodes) == googlenet.totals.params - googlenet.unused_params
    assert sum(n.macs for n in g.nodes) == googlenet.totals.macs


# ---------------------------------------------------------------------- ResNet-50


def test_resnet50_bottleneck_with_projection_shortcut(resnet50):
    g = build_graph(resnet50, depth=None, focus=["layer1.0"])
    convs = sorted((n.name, n.detail) for n in g.nodes if n.type == "Conv2d")
    assert convs == [("layer1.0.conv1", "1x1"), ("layer1.0.conv2", "3x3"),
                     ("layer1.0.conv3", "1x1"), ("layer1.0.downsample.0", "1x1")]
    out = {n: g.outputs_of(n)[0].shape for n, _ in convs}
    assert out == {"layer1.0.conv1": _chw(64, 56), "layer1.0.conv2": _chw(64, 56),
                   "layer1.0.conv3": _chw(256, 56), "layer1.0.downsample.0": _chw(256, 56)}
    # The projection shortcut reads the block's input, as conv1 does.
    assert _edges_into(g, "layer1.0.conv1") == [("maxpool", _chw(64, 56))]
    assert _edges_into(g, "layer1.0.downsample.0") == [("maxpool", _chw(64, 56))]
    (add,) = [n for n in g.nodes if n.kind == "merge"]
    assert add.type == "add"
    assert _edges_into(g, add.name) == [("layer1.0.bn3", _chw(256, 56)),
                                        ("layer1.0.downsample.1", _chw(256, 56))]


def test_repeats_collapse_into_one_node_and_expand_undoes_it(resnet50):
    g = build_graph(resnet50, depth=2)
    layer3 = [n for n in g.nodes if n.name.startswith("layer3")]
    # Table 1 writes conv4_x as one block x6; the first block differs (stride 2 and the
    # projection shortcut), so it stays alone: 1 + x5.
    assert [(n.name, n.repeat) for n in layer3] == [("layer3.0", 1), ("layer3.1-5", 5)]
    assert layer3[1].members == tuple(f"layer3.{k}" for k in range(1, 6))
    assert _edges_into(g, "layer3.1-5") == [("layer3.0", _chw(1024, 14))]
    assert [(g.name_of(e.target), e.shape) for e in g.outputs_of("layer3.1-5")] == \
        [("layer4.0", _chw(1024, 14))]
    assert sum(n.params for n in g.nodes) == resnet50.totals.params
    full = build_graph(resnet50, depth=2, expand=True)
    assert [n.name for n in full.nodes if n.name.startswith("layer3")] == \
        [f"layer3.{k}" for k in range(6)]
    assert sum(n.params for n in full.nodes) == resnet50.totals.params
    assert len(full.nodes) == len(g.nodes) + (2 - 1) + (3 - 1) + (5 - 1) + (2 - 1)


def test_a_depth_beyond_the_tree_is_the_leaf_depth(resnet50):
    deep = build_graph(resnet50, depth=50)
    leaf = build_graph(resnet50, depth=None)
    assert deep.nodes == leaf.nodes and deep.edges == leaf.edges
    assert all(n.kind != "block" for n in leaf.nodes)


# ---------------------------------------------------------------------- DenseNet-121


def test_densenet121_dense_block_1_and_transition_1():
    report = cnnscope.analyze("densenet121")
    g = build_graph(report, depth=1, focus=["features.denseblock1", "features.transition1"])
    k = 32  # growth rate
    layers = [n for n in g.nodes if n.type == "_DenseLayer"]
    assert len(layers) == 6
    for n in layers:
        assert [e.shape for e in g.outputs_of(n.name)] == [_chw(k, 56)]
    concats = [n for n in g.nodes if n.type == "concat"]
    assert len(concats) == 6
    # After layer i the concatenation holds the block input (64 channels) and i x k more.
    for i, c in enumerate(concats, start=1):
        assert {e.shape for e in g.outputs_of(c.name)} == {_chw(64 + i * k, 56)}
    into_transition = _edges_into(g, "features.transition1.norm")
    assert into_transition == [(concats[-1].name, _chw(64 + 6 * k, 56))]
    conv = g.node("features.transition1.conv")
    assert conv.detail == "1x1"
    assert g.outputs_of(conv.name)[0].shape == _chw((64 + 6 * k) // 2, 56)  # compression 0.5
    pool = g.node("features.transition1.pool")
    assert pool.detail == "2x2/2"
    assert [(g.name_of(e.target), e.shape) for e in g.outputs_of(pool.name)] == \
        [("to features.denseblock2", _chw((64 + 6 * k) // 2, 28))]


# ---------------------------------------------------------------------- U-Net, HRNet


def test_unet_at_572_is_the_papers_u():
    g = cnnscope.graph("unet", (1, 572, 572), depth=1)
    (out,) = [n for n in g.nodes if n.kind == "output"]
    assert [e.shape for e in g.inputs_of(out.name)] == [(2, 388, 388)]
    crops = [n for n in g.nodes if n.type == "crop"]
    concats = [n for n in g.nodes if n.type == "concat"]
    assert len(crops) == 4 and len(concats) == 4
    # Fig. 1: each skip leaves an encoder, is cropped, and joins the up-convolution.
    skips = {}
    for c in crops:
        (src,) = g.inputs_of(c.name)
        (dst,) = g.outputs_of(c.name)
        skips[g.name_of(src.source)] = (src.shape, dst.shape)
    assert skips == {"enc1": (_chw(64, 568), _chw(64, 392)),
                     "enc2": (_chw(128, 280), _chw(128, 200)),
                     "enc3": (_chw(256, 136), _chw(256, 104)),
                     "enc4": (_chw(512, 64), _chw(512, 56))}
    for c in concats:
        kinds = sorted(g.node(g.name_of(e.source)).type for e in g.inputs_of(c.name))
        assert kinds == ["ConvTranspose2d", "crop"]
    assert _edges_into(g, "dec4") == [("cat", _chw(1024, 56))]


def test_hrnet_depth_one_shows_the_parallel_streams():
    g = cnnscope.graph("hrnetv2_w18", depth=1)
    c = 18
    streams = {2: [_chw(c, 56), _chw(2 * c, 28)],
               3: [_chw(c, 56), _chw(2 * c, 28), _chw(4 * c, 14)],
               4: [_chw(c, 56), _chw(2 * c, 28), _chw(4 * c, 14), _chw(8 * c, 7)]}
    for stage, shapes in streams.items():
        into = sorted((e.shape for e in g.inputs_of(f"stage{stage}")), key=lambda s: -s[1])
        assert into == shapes, stage
    # The new lowest-resolution stream comes from the transition, the others pass through.
    assert _edges_into(g, "stage4")[-1] == ("transition3.3", _chw(8 * c, 7))


# ---------------------------------------------------------------------- any model


MODELS = """
import torch
from torch import nn

class Fuse(nn.Module):
    def __init__(self):
        super().__init__()
        self.rgb = nn.Conv2d(3, 8, 3, padding=1)
        self.depth = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x, d):
        return self.head(torch.cat([self.rgb(x), self.depth(d)], 1))

def fuse():
    return Fuse()
fuse.input_size = ((3, 32, 32), (1, 32, 32))

def gated():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.fc = nn.Linear(4, 4)
        def forward(self, x):
            y = self.conv(x)
            s = torch.sigmoid(self.fc(y.mean((2, 3)))).view(-1, 4, 1, 1)
            return y * s
    return Gate()
gated.input_size = (4, 8, 8)
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("graph") / "nets.py"
    path.write_text(MODELS)
    return path


def test_a_file_model_with_two_inputs(model_file):
    g = cnnscope.graph(f"{model_file}:fuse", depth=None)
    inputs = {n.name: [(g.name_of(e.target), e.shape) for e in g.outputs_of(n.name)]
              for n in g.nodes if n.kind == "input"}
    assert inputs == {"input 1": [("rgb", (3, 32, 32))], "input 2": [("depth", (1, 32, 32))]}
    (cat,) = [n for n in g.nodes if n.kind == "merge"]
    assert _edges_into(g, cat.name) == [("depth", (8, 32, 32)), ("rgb", (8, 32, 32))]
    assert _edges_into(g, "head") == [(cat.name, (8 + 8, 32, 32))]


def test_a_model_that_computes_nothing_is_one_line(model_file):
    with pytest.raises(CnnscopeError, match="runs no layer or op to draw"):
        cnnscope.graph("torch.nn:Identity", (3, 8, 8))


def test_a_gate_is_a_multiply_and_views_are_not_nodes(model_file):
    g = cnnscope.graph(f"{model_file}:gated", depth=None)
    (mul,) = [n for n in g.nodes if n.kind == "merge"]
    assert mul.type == "multiply"
    # The gate's (4,) vector reaches the multiply as the (4, 1, 1) view it reads.
    assert sorted(e.shape for e in g.inputs_of(mul.name)) == [(4, 1, 1), (4, 8, 8)]
    assert not [n for n in g.nodes if n.type in ("view", "reshape")]


# ---------------------------------------------------------------------- shading, errors


def test_shading_puts_the_heaviest_node_at_one(resnet50):
    g = build_graph(resnet50, depth=1, shade="params")
    heaviest = max((n for n in g.nodes if n.weight is not None), key=lambda n: n.params)
    assert heaviest.name == "layer4" and heaviest.weight == 1.0
    assert g.node("relu").weight == 0.0 and g.node("input").weight is None
    timed = build_graph(resnet50, depth=1, shade="time", times={"fc": 3.0, "conv1": 1.0,
                                                                "layer1.0.conv1": 0.5})
    assert timed.node("fc").weight == 1.0 and timed.node("conv1").weight == pytest.approx(1 / 3)
    assert timed.node("layer1").cost == 0.5


@pytest.mark.parametrize("kwargs, says", [
    ({"depth": 0}, "depth must be a whole number >= 1"),
    ({"depth": -2}, "depth must be a whole number >= 1"),
    ({"focus": ["inceptoin3a"]}, "nearest: inception3a"),
    ({"shade": "time"}, "needs per-layer times"),
    ({"shade": "flops"}, "unknown shade"),
    ({"depth": None, "max_nodes": 50}, "(the limit is 50)"),
])
def test_bad_requests_are_one_line_errors(googlenet, kwargs, says):
    with pytest.raises(CnnscopeError) as err:
        build_graph(googlenet, **kwargs)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_rf_is_the_field_at_each_nodes_output():
    g = cnnscope.graph("resnet50", depth=1, rf=True)
    # conv1 is 7x7 stride 2: r = 7, jump 2; the 3x3 max pool adds (3 - 1) x 2.
    assert g.node("conv1").rf == (7, 7)
    assert g.node("maxpool").rf == (7 + (3 - 1) * 2,) * 2
    assert g.node("fc").rf is None  # after global pooling the field is the whole input
    assert "RF 11" in g.to_mermaid() and "RF 11" in g.to_dot()
    assert cnnscope.graph("resnet50", depth=1).node("maxpool").rf is None


def test_replayed_blocks_draw_the_same_graph_as_traced_ones(resnet50):
    # On meta the tracer replays identical layers and blocks from memos instead of running
    # them again: the replayed records must carry the same producers, or edges go missing.
    import torch

    from cnnscope.models import resolve
    from cnnscope.trace.tracer import trace_module

    with torch.device("meta"):
        model = resolve("resnet50").build()
    plain = trace_module(model, (3, 224, 224), memoize=False)
    for depth in (1, 2, None):
        a, b = build_graph(resnet50, depth=depth), build_graph(plain, depth=depth)
        assert (a.nodes, a.edges) == (b.nodes, b.edges), depth
