"""VGG Tables 1-2 (Simonyan & Zisserman 2015) recomputed from the traced models."""

from __future__ import annotations

import pytest

from cnnscope.analysis.spec import vgg as spec

# Table 1: convolutions per block (all conv3), Table 2: parameters in millions.
CONFIGS = {"A": (1, 1, 2, 2, 2), "B": (2, 2, 2, 2, 2), "D": (2, 2, 3, 3, 3), "E": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)
PAPER_PARAMS_M = {"A": 133, "B": 133, "D": 138, "E": 144}


def vgg_params(counts, classes=1000):
    total, cin = 0, 3
    for n, c in zip(counts, WIDTHS):
        for _ in range(n):
            total += cin * c * 3 * 3 + c
            cin = c
    return total + (512 * 7 * 7 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * classes + classes)


@pytest.fixture(scope="module")
def table():
    from cnnscope.api import traced_zoo_model

    return spec.build(traced_zoo_model)


def test_configurations_as_the_paper_writes_them(table):
    for key, counts in CONFIGS.items():
        header = next(c for c in table.columns if c.startswith(key + " "))
        col = table.column(header)
        blocks = [c for label, c in zip(table.column("layer"), col) if label.startswith("block")]
        assert blocks == [", ".join([f"conv3-{w}"] * n) for n, w in zip(counts, WIDTHS)]
        assert [c for label, c in zip(table.column("layer"), col) if label == "FC"] == [
            "FC-4096", "FC-4096", "FC-1000"]
        assert table.row("weight layers")[header] == str(sum(counts) + 3)
    assert table.flags == ()


def test_params_by_arithmetic_and_table_2(table):
    assert vgg_params(CONFIGS["D"]) == 138_357_544  # torchvision VGG16 num_params
    for key, counts in CONFIGS.items():
        assert table.data[key]["params"] == vgg_params(counts)
        assert round(vgg_params(counts) / 1e6) == PAPER_PARAMS_M[key]
    assert table.column("A (vgg11)")[-2] == "ok"  # check row
