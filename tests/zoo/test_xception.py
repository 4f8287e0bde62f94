"""Xception: parameter count from the paper's Figure 5, shapes, options (meta device)."""

from __future__ import annotations

import pytest
import torch

from cnnscope.zoo import get_model, model_info
from cnnscope.zoo.xception import XCEPTION_BLOCKS

# Chollet 2017, Table 3: Xception 22,855,952 parameters. Keras Xception reports the same
# as "Trainable params" (22,910,480 total less 54,528 non-trainable BN moving statistics).
PAPER_PARAMS = 22_855_952


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(**kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        return get_model("xception", **kwargs)


def sep(cin: int, cout: int) -> int:
    """Separable conv 3x3: depthwise (one 3x3 filter per channel) + pointwise 1x1, no bias."""
    return cin * 3 * 3 + cin * cout


def bn(c: int) -> int:
    return 2 * c


def xception_params(num_classes: int = 1000) -> int:
    """The paper's Figure 5, layer by layer; every conv is followed by BN."""
    entry = (3 * 32 * 3 * 3 + bn(32) + 32 * 64 * 3 * 3 + bn(64)
             # three blocks: 2 separable convs + a 1x1 stride-2 projection on the shortcut
             + sep(64, 128) + bn(128) + sep(128, 128) + bn(128) + 64 * 128 + bn(128)
             + sep(128, 256) + bn(256) + sep(256, 256) + bn(256) + 128 * 256 + bn(256)
             + sep(256, 728) + bn(728) + sep(728, 728) + bn(728) + 256 * 728 + bn(728))
    middle = 8 * 3 * (sep(728, 728) + bn(728))
    exit_ = (sep(728, 728) + bn(728) + sep(728, 1024) + bn(1024) + 728 * 1024 + bn(1024)
             + sep(1024, 1536) + bn(1536) + sep(1536, 2048) + bn(2048))
    return entry + middle + exit_ + 2048 * num_classes + num_classes


def test_arithmetic_reproduces_paper_table_3():
    assert xception_params() == PAPER_PARAMS


def test_keras_bn_statistics_cross_check():
    # Keras counts 2 moving statistics per BN channel as non-trainable: 54,528.
    bn_channels = (32 + 64 + 3 * 128 + 3 * 256 + 3 * 728 + 8 * 3 * 728
                   + 728 + 1024 + 1024 + 1536 + 2048)
    assert 2 * bn_channels == 54_528
    assert PAPER_PARAMS + 2 * bn_channels == 22_910_480


def test_param_count_and_registry_reference():
    assert n_params(build()) == PAPER_PARAMS
    assert model_info("xception").reference_params == PAPER_PARAMS


def test_output_shape_at_default_input():
    info = model_info("xception")
    assert info.input_size == (3, 299, 299)
    m = build().eval()
    x = torch.empty(1, *info.input_size, device="meta")
    assert m(x).shape == (1, 1000)


def test_num_classes():
    m = build(num_classes=17)
    assert n_params(m) == xception_params(17)
    assert m.fc.out_features == 17


def test_flows_follow_figure_5():
    assert len(XCEPTION_BLOCKS) == 3 + 8 + 1
    m = build()
    # Middle-flow blocks keep the identity shortcut; entry/exit blocks project it.
    assert [getattr(m, f"block{i}").skip is None for i in range(1, 13)] == [False] * 3 + [True] * 8 + [False]
    # Separable convs are depthwise (groups == channels) then pointwise, both without bias.
    sc = m.block4.rep[1]
    assert sc.conv1.groups == sc.conv1.in_channels == 728 and sc.conv1.kernel_size == (3, 3)
    assert sc.pointwise.kernel_size == (1, 1) and sc.conv1.bias is None and sc.pointwise.bias is None
    # The exit block grows at its last separable conv: 728 -> 728 -> 1024.
    assert [mod.pointwise.out_channels for mod in m.block12.rep if hasattr(mod, "pointwise")] == [728, 1024]


def test_dropout_default_is_paper_value():
    assert build().head_drop.p == pytest.approx(0.5)
