"""GoogLeNet Table 1 (Szegedy et al. 2015) recomputed from the traced model.

Expected values are the paper's Table 1 (transcribed here, independently of the code's
copy) and arithmetic on its layer sizes: params are weights without biases in units of
1024, ops are multiply-adds (output positions x weights for a row whose layers share
one output size).
"""

from __future__ import annotations

import pytest

from cnnscope.analysis.spec import googlenet as spec

# Table 1 inception rows: (name, in_channels, output side, #1x1, #3x3 reduce, #3x3,
# #5x5 reduce, #5x5, pool proj, paper params K, paper ops M). in_channels is the depth of
# the previous row's output (192 after the stem, then each module's concatenation).
INCEPTION = [
    ("3a", 192, 28, 64, 96, 128, 16, 32, 32, 159, 128),
    ("3b", 256, 28, 128, 128, 192, 32, 96, 64, 380, 304),
    ("4a", 480, 14, 192, 96, 208, 16, 48, 64, 364, 73),
    ("4b", 512, 14, 160, 112, 224, 24, 64, 64, 437, 88),
    ("4c", 512, 14, 128, 128, 256, 24, 64, 64, 463, 100),
    ("4d", 512, 14, 112, 144, 288, 32, 64, 64, 580, 119),
    ("4e", 528, 14, 256, 160, 320, 32, 128, 128, 840, 170),
    ("5a", 832, 7, 256, 160, 320, 32, 128, 128, 1072, 54),
    ("5b", 832, 7, 384, 192, 384, 48, 128, 128, 1388, 71),
]


def inception_weights(cin, c1, c3r, c3, c5r, c5, pp):
    return cin * c1 + cin * c3r + 3 * 3 * c3r * c3 + cin * c5r + 5 * 5 * c5r * c5 + cin * pp


@pytest.fixture(scope="module")
def table():
    from cnnscope.api import traced_zoo_model

    return spec.build(traced_zoo_model)


def rows_by_type(table):
    return {row[0]: dict(zip(table.columns, row)) for row in table.rows}


def test_row_order_and_output_sizes_follow_the_paper(table):
    expected = [
        ("convolution", "7x7/2", "112x112x64", "1"),
        ("max pool + LRN", "3x3/2", "56x56x64", "0"),
        ("convolution + LRN", "3x3/1", "56x56x192", "2"),
        ("max pool", "3x3/2", "28x28x192", "0"),
        ("inception (3a)", "", "28x28x256", "2"),
        ("inception (3b)", "", "28x28x480", "2"),
        ("max pool", "3x3/2", "14x14x480", "0"),
        ("inception (4a)", "", "14x14x512", "2"),
        ("inception (4b)", "", "14x14x512", "2"),
        ("inception (4c)", "", "14x14x512", "2"),
        ("inception (4d)", "", "14x14x528", "2"),
        ("inception (4e)", "", "14x14x832", "2"),
        ("max pool", "3x3/2", "7x7x832", "0"),
        ("inception (5a)", "", "7x7x832", "2"),
        ("inception (5b)", "", "7x7x1024", "2"),
        ("avg pool", "7x7/1", "1x1x1024", "0"),
        ("dropout", "", "1x1x1024", "0"),
        ("linear", "", "1x1x1000", "1"),
    ]
    got = [(r[0], r[1], r[2], r[3]) for r in table.rows[:len(expected)]]
    assert got == expected
    assert table.rows[len(expected)][0] == "softmax"
    assert table.rows[len(expected)][-1].startswith("paper only")
    assert table.rows[-1][0] == "total"


@pytest.mark.parametrize("row", INCEPTION, ids=[r[0] for r in INCEPTION])
def test_branch_columns_params_and_ops_of_each_inception(table, row):
    name, cin, side, c1, c3r, c3, c5r, c5, pp, _, _ = row
    cells = rows_by_type(table)[f"inception ({name})"]
    assert [cells[c] for c in spec.BRANCH_COLUMNS] == [str(v) for v in (c1, c3r, c3, c5r, c5, pp)]
    weights = inception_weights(cin, c1, c3r, c3, c5r, c5, pp)
    assert cells["params"] == f"{weights / 1024:.1f}K"
    assert cells["ops"] == f"{side * side * weights / 1e6:.1f}M"


def test_inception_3a_by_hand(table):
    # 192x64 + 192x96 + 3x3x96x128 + 192x16 + 5x5x16x32 + 192x32 = 163,328 = 159.5K
    weights = 192 * 64 + 192 * 96 + 3 * 3 * 96 * 128 + 192 * 16 + 5 * 5 * 16 * 32 + 192 * 32
    assert weights == 163_328
    cells = rows_by_type(table)["inception (3a)"]
    assert cells["params"] == "159.5K" and cells["paper params"] == "159K"
    assert cells["ops"] == "128.0M" and cells["paper ops"] == "128M"  # 28 x 28 x 163,328
    assert cells["check"] == "ok"  # 159.5 printed as 159: within the last digit's rounding


def test_stem_rows(table):
    conv1 = table.rows[0]
    cells = dict(zip(table.columns, conv1))
    assert cells["params"] == f"{7 * 7 * 3 * 64 / 1024:.1f}K" == "9.2K"
    assert cells["ops"] == f"{112 * 112 * 64 * 7 * 7 * 3 / 1e6:.1f}M" == "118.0M"
    conv2 = dict(zip(table.columns, table.rows[2]))
    weights = 64 * 64 + 3 * 3 * 64 * 192  # 1x1 reduce to 64, then 3x3 to 192
    assert conv2["#3x3 reduce"] == "64" and conv2["#3x3"] == "192"
    assert conv2["params"] == f"{weights / 1024:.1f}K" == "112.0K"
    assert conv2["ops"] == f"{56 * 56 * weights / 1e6:.1f}M" == "359.7M"
    assert conv2["check"] == "ok"
    linear = rows_by_type(table)["linear"]
    assert linear["params"] == f"{1024 * 1000 / 1024:.1f}K" and linear["check"] == "ok"


def test_conv1_is_flagged_with_its_arithmetic(table):
    flags = [f for f in table.flags if f.row.startswith("conv1")]
    assert {f.column for f in flags} == {"params", "ops"}
    assert all(f.status == "differs" for f in flags)
    params = next(f for f in flags if f.column == "params")
    assert "7x7x3x64 = 9,408 weights = 9.2K" in params.reason
    assert params.paper == "2.7K"
    assert table.rows[0][-1] == "differs: params, ops [1]"
    assert "does not follow" in table.row_notes[0] or "do not follow" in table.row_notes[0]


def test_flagged_rows_are_those_the_paper_arithmetic_does_not_support(table):
    """Flag where |computed - printed| exceeds half the last printed digit; 'differs'
    beyond 3%. Computed from the paper's own layer sizes here."""
    expected = {}
    for name, cin, side, c1, c3r, c3, c5r, c5, pp, paper_k, paper_m in INCEPTION:
        w = inception_weights(cin, c1, c3r, c3, c5r, c5, pp)
        for col, value, printed in (("params", w / 1024, paper_k), ("ops", side * side * w / 1e6, paper_m)):
            diff = abs(value - printed)
            if diff > 0.5:
                expected[(f"inception ({name})", col)] = "near" if diff <= 0.03 * max(value, printed) else "differs"
    got = {(f.row, f.column): f.status for f in table.flags if f.row.startswith("inception")}
    assert got == expected
    # The rows the paper gets clearly wrong: conv1 (both), 4c (params) and 5a (both).
    differs = sorted({f.row for f in table.flags if f.status == "differs"})
    assert differs == ["conv1 (convolution)", "inception (4c)", "inception (5a)"]


def test_5a_paper_figures_agree_with_each_other_but_not_with_the_layer_sizes(table):
    note = rows_by_type(table)["inception (5a)"]
    assert note["check"].startswith("differs: params, ops")
    text = table.row_notes[[r[0] for r in table.rows].index("inception (5a)")]
    # 1072K x 49 positions = 53.8M, printed 54M: the paper's two figures agree.
    assert f"{1072 * 1024 * 49 / 1e6:.1f}M" in text
    weights = inception_weights(832, 256, 160, 320, 32, 128, 128)
    assert f"{weights:,}" in text


def test_4c_ops_follow_from_the_layer_sizes_so_params_is_the_slip(table):
    weights = inception_weights(512, 128, 128, 256, 24, 64, 64)
    assert round(14 * 14 * weights / 1e6) == 100  # the paper's 100M
    text = table.row_notes[[r[0] for r in table.rows].index("inception (4c)")]
    assert "slip in that column alone" in text


def test_total_row_sums_the_traced_weights(table):
    total = dict(zip(table.columns, table.rows[-1]))
    stem = 7 * 7 * 3 * 64 + 64 * 64 + 3 * 3 * 64 * 192
    inceptions = sum(inception_weights(*r[1:2], *r[3:9]) for r in INCEPTION)
    weights = stem + inceptions + 1024 * 1000
    assert total["params"] == f"{weights / 1024:.1f}K"
    # Sum of the paper's printed params column (K) and ops column (M).
    assert total["paper params"] == f"{2.7 + 112 + 159 + 380 + 364 + 437 + 463 + 580 + 840 + 1072 + 1388 + 1000:.1f}K"
    assert total["paper ops"] == f"{34 + 360 + 128 + 304 + 73 + 88 + 100 + 119 + 170 + 54 + 71 + 1}M"


def test_paper_transcription_matches_the_zoo_copy():
    """Two independent transcriptions of Table 1 (the zoo builds the model from its own)."""
    from cnnscope.zoo.googlenet import GOOGLENET_TABLE1

    mine = {p.key: p for p in spec.PAPER_TABLE1}
    for row in GOOGLENET_TABLE1:
        p = mine[f"inception{row.name}"]
        assert p.branches == tuple(str(v) for v in (row.ch1x1, row.ch3x3red, row.ch3x3,
                                                    row.ch5x5red, row.ch5x5, row.pool_proj))
        assert (p.params_k, p.ops_m) == (str(row.paper_params_k), str(row.paper_ops_m))
        assert p.output == f"{row.output_size}x{row.output_size}x{row.output_channels}"


def test_branch_columns_come_from_the_trace_not_the_table():
    """Built with other channel counts, the traced columns follow the model."""
    import dataclasses

    import torch

    from cnnscope.api import analyze
    from cnnscope.zoo.googlenet import GOOGLENET_TABLE1, GoogLeNet

    table = tuple(dataclasses.replace(r, ch5x5red=r.ch5x5red * 2) for r in GOOGLENET_TABLE1)
    with torch.device("meta"):
        model = GoogLeNet(table=table)
    report = analyze(model, (3, 224, 224))
    groups = dict(spec.row_groups(report))
    cols = spec.branch_columns(groups["inception3a"])
    assert cols["#5x5 reduce"] == str(16 * 2)
    assert cols["pool proj"] == "32" and cols["#1x1"] == "64"
