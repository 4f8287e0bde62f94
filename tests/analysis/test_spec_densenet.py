"""DenseNet Table 1 (Huang et al. 2017) recomputed from the traced models.

Block sizes are the paper's Table 1; channel counts and parameter counts are arithmetic
on it (growth rate k = 32, stem 2k = 64, bottleneck 4k, compression 0.5).
"""

from __future__ import annotations

import pytest

from cnnscope.analysis.spec import densenet as spec

# Huang et al. 2017, Table 1: dense layers per block.
PAPER_BLOCKS = {"densenet121": (6, 12, 24, 16), "densenet169": (6, 12, 32, 32),
                "densenet201": (6, 12, 48, 32), "densenet264": (6, 12, 64, 48)}
K = 32


def channels_after(blocks):
    """[after block 1, after transition 1, ..., after block 4] by the paper's rules."""
    c, out = 2 * K, []
    for i, n in enumerate(blocks):
        c += n * K
        out.append(c)
        if i < len(blocks) - 1:
            c //= 2
            out.append(c)
    return out


def densenet_params(blocks, classes=1000):
    """Every parameter of a DenseNet-BC: conv weights (no biases), BN scale + shift, fc."""
    c = 2 * K
    total = 3 * c * 7 * 7 + 2 * c  # stem conv + BN
    for i, n in enumerate(blocks):
        for _ in range(n):
            total += 2 * c + c * 4 * K + 2 * 4 * K + 4 * K * K * 3 * 3
            c += K
        if i < len(blocks) - 1:
            total += 2 * c + c * (c // 2)
            c //= 2
    return total + 2 * c + c * classes + classes


@pytest.fixture(scope="module")
def table():
    from cnnscope.api import traced_zoo_model

    return spec.build(traced_zoo_model)


def test_channel_counts_by_arithmetic(table):
    # densenet121: 64 + 6x32 = 256 -> 128 -> 128 + 12x32 = 512 -> 256 -> 256 + 24x32 = 1024
    # -> 512 -> 512 + 16x32 = 1024.
    assert channels_after(PAPER_BLOCKS["densenet121"]) == [256, 128, 512, 256, 1024, 512, 1024]
    labels = ["channels after Dense Block (1)", "channels after Transition Layer (1)",
              "channels after Dense Block (2)", "channels after Transition Layer (2)",
              "channels after Dense Block (3)", "channels after Transition Layer (3)",
              "channels after Dense Block (4)"]
    for model, blocks in PAPER_BLOCKS.items():
        header = f"DenseNet-{model[8:]}"
        got = [int(table.row(label)[header]) for label in labels]
        assert got == channels_after(blocks), model
    # densenet264: 256 -> 128 -> 512 -> 256 -> 256 + 64x32 = 2304 -> 1152 -> 1152 + 48x32.
    assert table.row("channels after Dense Block (3)")["DenseNet-264"] == str(256 + 64 * K)
    assert table.row("channels after Dense Block (4)")["DenseNet-264"] == str(1152 + 48 * K)


def test_block_rows_and_output_sizes_follow_the_paper(table):
    sizes = {"Dense Block (1)": "56x56", "Dense Block (2)": "28x28", "Dense Block (3)": "14x14",
             "Dense Block (4)": "7x7"}
    for i, (label, size) in enumerate(sizes.items()):
        row = table.row(label)
        assert row["output size"] == size
        for model, blocks in PAPER_BLOCKS.items():
            assert row[f"DenseNet-{model[8:]}"] == f"[1x1 conv; 3x3 conv] x {blocks[i]}"
    assert table.row("Convolution")["output size"] == "112x112"
    assert table.row("Convolution")["DenseNet-121"] == "7x7 conv, stride 2"
    assert table.row("Pooling")["DenseNet-264"] == "3x3 max pool, stride 2"
    t1 = [dict(zip(table.columns, r)) for r in table.rows if r[0] == "Transition Layer (1)"]
    assert [(r["output size"], r["DenseNet-169"]) for r in t1] == [
        ("56x56", "1x1 conv"), ("28x28", "2x2 average pool, stride 2")]
    assert table.row("Classification Layer")["DenseNet-201"] == "7x7 global average pool"
    assert table.row("growth rate k")["DenseNet-121"] == str(K)
    assert table.flags == ()


def test_params_of_each_network(table):
    # The arithmetic reproduces torchvision's published counts (weights meta num_params)...
    assert densenet_params(PAPER_BLOCKS["densenet121"]) == 7_978_856
    assert densenet_params(PAPER_BLOCKS["densenet169"]) == 14_149_480
    assert densenet_params(PAPER_BLOCKS["densenet201"]) == 20_013_928
    # ...and the traced counts equal it for all four, DenseNet-264 included.
    for model, blocks in PAPER_BLOCKS.items():
        assert table.data[model]["params"] == densenet_params(blocks), model
        assert table.row("params (traced)")[f"DenseNet-{model[8:]}"] == f"{densenet_params(blocks):,}"
    assert table.row("params (torchvision)")["DenseNet-264"] == "-"
