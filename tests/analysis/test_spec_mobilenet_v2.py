"""MobileNetV2 Table 2 (Sandler et al. 2018) recomputed from the traced model."""

from __future__ import annotations

import pytest

from cnnscope.analysis.spec import mobilenet_v2 as spec

# Sandler et al. 2018, Table 2: (input, t, c, n, s) of the stem and the bottleneck rows.
PAPER = [
    ("224x224x3", "-", "32", "1", "2"),
    ("112x112x32", "1", "16", "1", "1"),
    ("112x112x16", "6", "24", "2", "2"),
    ("56x56x24", "6", "32", "3", "2"),
    ("28x28x32", "6", "64", "4", "2"),
    ("14x14x64", "6", "96", "3", "1"),
    ("14x14x96", "6", "160", "3", "2"),
    ("7x7x160", "6", "320", "1", "1"),
    ("7x7x320", "-", "1280", "1", "1"),
]


@pytest.fixture(scope="module")
def table():
    from cnnscope.api import traced_zoo_model

    return spec.build(traced_zoo_model)


def test_t_c_n_s_rows_follow_the_paper(table):
    got = [(r[0], r[2], r[3], r[4], r[5]) for r in table.rows[:len(PAPER)]]
    assert got == PAPER
    assert [r[1] for r in table.rows[:3]] == ["conv2d 3x3", "bottleneck", "bottleneck"]
    assert table.rows[9][:2] == ("7x7x1280", "avgpool 7x7")
    assert table.rows[10][:4] == ("1x1x1280", "linear", "-", "1000")
    assert all(r[-1] == "ok" for r in table.rows[:11])
    # 17 bottleneck blocks: 1 + 2 + 3 + 4 + 3 + 3 + 1.
    assert sum(int(r[4]) for r in table.rows if r[1] == "bottleneck") == 17


def test_totals_beside_the_paper(table):
    # torchvision MobileNet_V2_Weights.IMAGENET1K_V1 meta num_params.
    assert table.data["params"] == 3_504_872
    assert round(table.data["macs"] / 1e6) in (300, 301)  # the paper's Table 4: 300M
    assert table.rows[-2][-1].startswith("paper 3.4M: near")
    note = next(f.reason for f in table.flags if f.row == "params")
    assert "3.47M" in note
