"""ResNet Table 1 (He et al. 2016) recomputed from the traced models.

Expected block shapes and FLOPs are the paper's Table 1 (1.8, 3.6, 3.8, 7.6, 11.3 x10^9
multiply-adds), and the multiply-adds are checked by arithmetic on the layer sizes.
"""

from __future__ import annotations

import math

import pytest

from cnnscope.analysis.spec import resnet as spec

# He et al. 2016, Table 1 (the paper's FLOPs row, x10^9 multiply-adds).
PAPER_FLOPS = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}
BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
          152: (3, 8, 36, 3)}


@pytest.fixture(scope="module")
def table():
    from cnnscope.api import traced_zoo_model

    return spec.build(traced_zoo_model)


def test_block_shapes_as_the_paper_writes_them(table):
    for depth in (18, 34):
        col = table.column(f"{depth}-layer")
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), BLOCKS[depth])):
            assert col[2 + i] == f"[3x3, {width}; 3x3, {width}] x {n}"
    for depth in (50, 101, 152):
        col = table.column(f"{depth}-layer")
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), BLOCKS[depth])):
            assert col[2 + i] == f"[1x1, {width}; 3x3, {width}; 1x1, {4 * width}] x {n}"
    assert table.column("152-layer")[4] == "[1x1, 256; 3x3, 256; 1x1, 1024] x 36"


def test_stem_head_and_output_sizes(table):
    assert table.column("layer name")[:6] == ["conv1", "conv2_x", "conv2_x", "conv3_x",
                                              "conv4_x", "conv5_x"]
    assert table.column("output size")[:7] == ["112x112", "56x56", "56x56", "28x28", "14x14",
                                               "7x7", "1x1"]
    for depth in (18, 34, 50, 101, 152):
        col = table.column(f"{depth}-layer")
        assert col[0] == "7x7, 64, stride 2"
        assert col[1] == "3x3 max pool, stride 2"
        assert col[6] == "average pool, 1000-d fc"
    structural = [f for f in table.flags if f.row != "FLOPs"]
    assert structural == []


def test_resnet18_multiply_adds_by_arithmetic(table):
    per_stage = lambda side, cin, c: (side * side * c * cin * 9            # first 3x3 (stride 2)
                                      + 3 * side * side * c * c * 9        # three more 3x3
                                      + side * side * c * cin)             # 1x1 projection
    expected = (112 * 112 * 64 * 3 * 7 * 7          # conv1
                + 4 * 56 * 56 * 64 * 64 * 9         # conv2_x: two blocks of two 3x3
                + per_stage(28, 64, 128) + per_stage(14, 128, 256) + per_stage(7, 256, 512)
                + 512 * 1000)                       # fc
    assert table.data["macs"]["18"] == expected


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_flops_row_agrees_with_the_paper_to_its_printed_digit(table, depth):
    traced = table.data["macs"][str(depth)] / 1e9
    paper = PAPER_FLOPS[depth]
    assert abs(traced - paper) < 0.1
    # The printed figure is the traced one rounded (18, 101, 152) or truncated (34, 50).
    assert paper in (round(traced, 1), math.floor(traced * 10) / 10)
    assert table.row("FLOPs (paper, x10^9)")[f"{depth}-layer"] == str(paper)


def test_rounding_and_truncation_are_explained(table):
    checks = table.row("check (paper vs traced)")
    assert [checks[f"{d}-layer"] for d in (18, 101, 152)] == ["ok", "ok", "ok"]
    assert checks["34-layer"].startswith("near") and checks["50-layer"].startswith("near")
    notes = {f.column: f.reason for f in table.flags if f.row == "FLOPs"}
    assert set(notes) == {"34-layer", "50-layer"}
    # 34-layer: without the projection shortcuts (option A, as the plain baseline) 3.64 -> 3.6.
    projections = (28 * 28 * 128 * 64) + (14 * 14 * 256 * 128) + (7 * 7 * 512 * 256)
    option_a = table.data["macs"]["34"] - projections
    assert table.data["macs_no_projection"]["34"] == option_a
    assert round(option_a / 1e9, 1) == 3.6
    assert "option A" in notes["34-layer"]
    assert "truncat" in notes["50-layer"]


def test_v15_costs_three_undownsampled_1x1_convolutions_more(table):
    # torchvision's V1.5 runs the first 1x1 of conv3_x..conv5_x's first block at the
    # input resolution: 4x the positions of the paper's strided 1x1.
    extra = (256 * 128 * (56 * 56 - 28 * 28)
             + 512 * 256 * (28 * 28 - 14 * 14)
             + 1024 * 512 * (14 * 14 - 7 * 7))
    assert extra == 3 * 77_070_336
    for depth in (50, 101, 152):
        assert table.data["macs_v15"][str(depth)] - table.data["macs"][str(depth)] == extra
    for depth in (18, 34):
        assert table.data["macs_v15"][str(depth)] == table.data["macs"][str(depth)]
    assert table.row("FLOPs traced, torchvision V1.5 (x10^9)")["50-layer"] == "4.09"
    assert any("V1.5" in n for n in table.notes)


def test_params_match_torchvision_published_counts(table):
    # torchvision ResNet*_Weights.IMAGENET1K_V1 meta num_params (stride placement does not
    # change the weights).
    published = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160,
                 152: 60_192_808}
    assert {int(k): v for k, v in table.data["params"].items()} == published
