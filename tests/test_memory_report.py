"""reports/memory.md (estimate vs measurement) agrees with itself, docs/memory.md and the planner.

The measured column cannot be regenerated in a test, but the estimates can (on meta, in
a second or so each), the error column follows from the two, and docs/memory.md must show
the committed table. Regenerate with: python benchmarks/memory_check.py --device cpu -o reports/memory.md
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "reports" / "memory.md"
UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
ISSUE_MODELS = {"resnet18", "resnet50", "mobilenet_v2", "densenet121", "unet"}


def rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| `")]


def size(text: str) -> float:
    value, unit = text.split()
    return float(value) * UNITS[unit]


TEXT = REPORT.read_text(encoding="utf-8")
ROWS = rows(TEXT)
# The README shows the convolutional networks' table; the attention models follow it.
CNN_ROWS = rows(TEXT.split("## Attention models")[0])
ATTENTION_ROWS = rows(TEXT.split("## Attention models")[1]) if "## Attention models" in TEXT else []


def test_report_covers_the_issue_models_at_several_batches():
    trained = {}
    for r in ROWS:
        if r[3] == "sgd" and r[2] == "fp32":
            trained.setdefault(r[0].strip("`"), set()).add(r[1])
    assert ISSUE_MODELS <= set(trained)
    assert all(len(trained[m]) >= 3 for m in ISSUE_MODELS)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r[0]}-{r[1]}-{r[2]}-{r[3]}")
def test_error_column_follows_and_training_rows_are_within_5_percent(row):
    estimate, measured, err = size(row[4]), size(row[5]), float(row[6].rstrip("%"))
    assert err == pytest.approx(100 * (estimate / measured - 1), abs=0.2)
    if row[3] != "infer":
        assert abs(err) <= 5.0


@pytest.mark.parametrize("row", [r for r in ROWS if r[1].startswith(("1x", "8x"))
                                 and r[0] in ("`resnet18`", "`mobilenet_v2`")][:3],
                         ids=lambda r: f"{r[0]}-{r[1]}-{r[2]}-{r[3]}")
def test_estimates_are_what_the_planner_gives_now(row):
    from cnnscope.api import plan_memory
    from cnnscope.units import bytes_h

    name = row[0].strip("`")
    batch, *size_ = (int(x) for x in row[1].split("x"))
    dtype, *flags = row[2].split()
    opts = {"dtype": dtype, "channels_last": "cl" in flags}
    if row[3] == "infer":
        opts["inference"] = True
    else:
        opts["optimizer"] = row[3]
    plan = plan_memory(name, tuple(size_), batch, **opts)
    assert bytes_h(plan.peak_bytes) == row[4], \
        "reports/memory.md is stale: python benchmarks/memory_check.py --device cpu -o reports/memory.md"


def test_memory_page_shows_the_committed_table():
    page = (ROOT / "docs" / "memory.md").read_text(encoding="utf-8")
    start = page.index("\n## Checked against measurement")
    end = page.find("\n## ", start + 1)
    section = page[start:end if end > 0 else len(page)]
    assert rows(section) == CNN_ROWS


def test_report_covers_the_attention_models_at_two_batches_with_the_kernel_named():
    batches = {}
    for r in ATTENTION_ROWS:
        batches.setdefault(r[0].strip("`").split(":")[1].split("_")[0], set()).add(r[1])
        kernels = r[8]
        assert kernels == "-" or all(k.split(" x")[0] in ("flash", "math") for k in kernels.split(", "))
    assert {"vit", "deit", "swin", "eva02"} <= set(batches)
    assert all(len(b) >= 2 for b in batches.values())


def test_torchinfo_column_is_its_estimated_total_size():
    # torchinfo 1.8: input + 2 x the output of every leaf layer that has parameters (value
    # and gradient; a ReLU counts nothing) + the parameters once.
    torchinfo = pytest.importorskip("torchinfo")
    import sys

    from torch import nn

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from memory_check import torchinfo_total

    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU())
    stats = torchinfo.summary(net, input_size=(2, 3, 8, 8), device="cpu", verbose=0)
    conv_output = 2 * 8 * 8 * 8 * 4
    params = 8 * 3 * 3 * 3 * 4
    assert stats.total_input >= 2 * 3 * 8 * 8 * 4  # the input (torchinfo adds its object size)
    assert torchinfo_total(net, (3, 8, 8), 2, "cpu") == stats.total_input + 2 * conv_output + params
