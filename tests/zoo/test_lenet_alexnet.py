"""LeNet-5 and AlexNet: parameter counts from the papers' layer descriptions, shapes, options.

Expected values are the arithmetic of the papers' layers, never the model's own output.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnscope.zoo import get_model, model_info
from cnnscope.zoo.lenet import LENET5_C3_TABLE


def build(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return get_model(name, **kwargs)


def n_params(module: nn.Module, trainable: bool | None = None) -> int:
    return sum(p.numel() for p in module.parameters()
               if trainable is None or p.requires_grad == trainable)


def output_sizes(model: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, tuple]:
    """Output shape of each named submodule for input ``x``."""
    modules = dict(model.named_modules())
    seen: dict[str, tuple] = {}
    hooks = [modules[n].register_forward_hook(
        lambda m, i, o, n=n: seen.__setitem__(n, tuple(o.shape))) for n in names]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


# ------------------------------------------------------------------------------ LeNet-5

# Table I of LeCun et al. 1998, rows = S2 maps 0..5, columns = C3 maps 0..15.
PAPER_TABLE_I = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
"""


def test_lenet5_c3_table_is_table_i():
    rows = PAPER_TABLE_I.split()
    for out_map, inputs in enumerate(LENET5_C3_TABLE):
        expected = {i for i in range(6) if rows[i][out_map] == "X"}
        assert set(inputs) == expected, f"C3 map {out_map}"


def test_lenet5_layer_params_are_the_papers():
    m = build("lenet5")
    # Sec. II-B of the paper gives each layer's trainable parameters.
    assert n_params(m.c1) == 6 * (5 * 5 * 1 + 1) == 156
    assert n_params(m.s2) == 6 * 2 == 12  # one coefficient and one bias per map
    assert n_params(m.c3) == (6 * (3 * 25 + 1) + 6 * (4 * 25 + 1) + 3 * (4 * 25 + 1)
                              + (6 * 25 + 1)) == 1516
    assert n_params(m.s4) == 16 * 2 == 32
    assert n_params(m.c5) == 120 * (16 * 25 + 1) == 48_120
    assert n_params(m.f6) == 84 * (120 + 1) == 10_164
    assert n_params(m.output, trainable=True) == 0
    assert n_params(m.output, trainable=False) == 84 * 10  # fixed by hand in the paper


def test_lenet5_trainable_and_frozen_totals():
    m = build("lenet5")
    trainable = 156 + 12 + 1516 + 32 + 48_120 + 10_164
    assert trainable == 60_000
    assert n_params(m, trainable=True) == trainable
    assert n_params(m, trainable=False) == 840
    assert n_params(m) == trainable + 840 == model_info("lenet5").reference_params


def test_lenet5_shapes_on_meta():
    m = build("lenet5")
    x = torch.empty(2, *model_info("lenet5").input_size, device="meta")
    sizes = output_sizes(m, ["c1", "s2", "c3", "s4", "c5", "f6", "output"], x)
    # Feature maps 28, 14, 10, 5, 1 as in Figure 2 of the paper.
    assert sizes == {"c1": (2, 6, 28, 28), "s2": (2, 6, 14, 14), "c3": (2, 16, 10, 10),
                     "s4": (2, 16, 5, 5), "c5": (2, 120, 1, 1), "f6": (2, 84),
                     "output": (2, 10)}


def test_lenet5_c3_connectivity():
    # Perturb one S2 map at a time: exactly the C3 maps whose table row names it change.
    torch.manual_seed(0)
    c3 = get_model("lenet5").c3  # tiny: real weights on CPU
    x = torch.randn(1, 6, 14, 14)
    base = c3(x)
    for i in range(6):
        x2 = x.clone()
        x2[:, i] += 1.0
        changed = {j for j in range(16) if not torch.allclose(c3(x2)[:, j], base[:, j])}
        assert changed == {j for j, row in enumerate(LENET5_C3_TABLE) if i in row}


def test_lenet5_num_classes():
    m = build("lenet5", num_classes=5)
    assert n_params(m.output) == 84 * 5
    assert m(torch.empty(3, 1, 32, 32, device="meta")).shape == (3, 5)


# ------------------------------------------------------------------------------ AlexNet

# (out, in per group, kernel, groups) of conv1..conv5, Krizhevsky et al. 2012 Sec. 3.5 / Fig. 2.
ALEXNET_CONVS = [(96, 3, 11, 1), (256, 48, 5, 2), (384, 256, 3, 1), (384, 192, 3, 2),
                 (256, 192, 3, 2)]
ALEXNET_FCS = [(256 * 6 * 6, 4096), (4096, 4096), (4096, 1000)]


def test_alexnet_params_by_arithmetic():
    convs = sum(out * cin * k * k + out for out, cin, k, _ in ALEXNET_CONVS)
    fcs = sum(i * o + o for i, o in ALEXNET_FCS)
    # 60,965,224 is also Caffe bvlc_alexnet's count, which has the same layer shapes.
    assert convs + fcs == 60_965_224
    m = build("alexnet")
    assert n_params(m) == convs + fcs == model_info("alexnet").reference_params
    got = [(c.out_channels, c.in_channels // c.groups, c.kernel_size[0], c.groups)
           for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert got == ALEXNET_CONVS


def test_alexnet_lrn_is_the_papers():
    m = build("alexnet")
    lrns = [l for l in m.modules() if isinstance(l, nn.LocalResponseNorm)]
    assert len(lrns) == 2
    for lrn in lrns:
        # torch divides alpha by size; the paper's alpha = 1e-4 is not divided.
        assert (lrn.size, lrn.beta, lrn.k) == (5, 0.75, 2.0)
        assert lrn.alpha / lrn.size == pytest.approx(1e-4)


def test_alexnet_shapes_227():
    m = build("alexnet")
    x = torch.empty(2, 3, 227, 227, device="meta")
    f = m.features
    names = {f"features.{i}": type(l).__name__ for i, l in enumerate(f)}
    pools = [n for n, t in names.items() if t == "MaxPool2d"]
    convs = [n for n, t in names.items() if t == "Conv2d"]
    sizes = output_sizes(m, convs + pools + ["classifier.6"], x)
    # 55 (conv1), 27 (pool1, conv2), 13 (pool2, conv3-5), 6 (pool3): the paper's figure.
    assert [sizes[n][2:] for n in convs] == [(55, 55), (27, 27), (13, 13), (13, 13), (13, 13)]
    assert [sizes[n][1:] for n in pools] == [(96, 27, 27), (256, 13, 13), (256, 6, 6)]
    assert sizes["classifier.6"] == (2, 1000)


def test_alexnet_rejects_224():
    # (224 - 11) / 4 + 1 is not an integer: the maps end 5x5, not the 6x6 fc6 was built for.
    m = build("alexnet")
    with pytest.raises(RuntimeError, match=r"\[1, 6400\] X \[9216, 4096\]"):  # 256x5x5 vs 256x6x6
        m(torch.empty(1, 3, 224, 224, device="meta"))


def test_alexnet_num_classes():
    m = build("alexnet", num_classes=10)
    assert n_params(m) == 60_965_224 - (4096 * 1000 + 1000) + (4096 * 10 + 10)
    assert m(torch.empty(2, 3, 227, 227, device="meta")).shape == (2, 10)


def test_alexnet_torchvision_difference_is_documented():
    # torchvision's alexnet: 64-192-384-256-256 filters, no groups (its weights meta:
    # num_params 61,100,840); our docstring must say how it differs.
    tv = (64 * 3 * 121 + 64 + 192 * 64 * 25 + 192 + 384 * 192 * 9 + 384
          + 256 * 384 * 9 + 256 + 256 * 256 * 9 + 256 + 9216 * 4096 + 4096
          + 4096 * 4096 + 4096 + 4096 * 1000 + 1000)
    assert tv == 61_100_840
    doc = model_info("alexnet").factory.__doc__
    assert "61,100,840" in doc and "227" in doc
