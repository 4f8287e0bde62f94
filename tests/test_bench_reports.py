"""The committed benchmark reports agree with themselves, with docs/bench.md and with the count.

Measured figures cannot be regenerated in a test, but what is derived from them can be
checked: images/s is batch / median, and GFLOP/s is the FLOPs the tracer counts for
resnet18 (torchvision publishes 1.81 GFLOPS, i.e. 1.81 G multiply-adds, for it) over the
median. A report edited by hand, or a renderer that changed its arithmetic, fails here;
so does a docs page whose "Measured here" table is not the report's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH_CPU = ROOT / "reports" / "bench_cpu.md"

# ResNet-18 at 3x224x224: conv1 118,013,952 + the 16 3x3 convs and the 3 downsampling 1x1
# convs + fc 512,000 = 1,814,073,344 MACs (torchvision: "GFLOPS": 1.81, MACs by its own
# convention). Recomputed below from the layer table rather than taken from cnnscope.
RESNET18_MACS = (
    64 * 3 * 7 * 7 * 112 * 112  # conv1
    + 4 * 64 * 64 * 9 * 56 * 56  # layer1: four 3x3 convs at 56x56
    + 128 * 64 * 9 * 28 * 28 + 3 * 128 * 128 * 9 * 28 * 28 + 128 * 64 * 28 * 28  # layer2
    + 256 * 128 * 9 * 14 * 14 + 3 * 256 * 256 * 9 * 14 * 14 + 256 * 128 * 14 * 14  # layer3
    + 512 * 256 * 9 * 7 * 7 + 3 * 512 * 512 * 9 * 7 * 7 + 512 * 256 * 7 * 7  # layer4
    + 512 * 1000  # fc
)


def table_rows(text: str) -> list[list[str]]:
    """The data rows of the Markdown bench tables in ``text`` (model column in backticks)."""
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| `")]


def test_resnet18_macs_are_the_traced_count():
    import cnnscope

    assert RESNET18_MACS == 1_814_073_344
    assert cnnscope.analyze("resnet18").totals.macs == RESNET18_MACS


@pytest.mark.parametrize("row", table_rows(BENCH_CPU.read_text(encoding="utf-8")),
                         ids=lambda r: f"{r[0]}-b{r[1]}-{r[3]}")
def test_cpu_report_figures_follow_from_the_median(row):
    model, batch, dtype, mode, median_ms = row[0], int(row[1]), row[2], row[3], float(row[4])
    img_s, gflops = float(row[9]), float(row[11])
    assert model == "`resnet18`" and dtype == "fp32" and row[-1] == "ok"
    assert img_s == pytest.approx(batch / (median_ms / 1e3), rel=5e-3)
    # forward: 2 FLOPs per MAC; a training step counts 3x the forward (docs/bench.md).
    passes = 3 if mode == "train" else 1
    assert gflops == pytest.approx(passes * 2 * RESNET18_MACS * batch / (median_ms / 1e3) / 1e9,
                                   rel=5e-3)


def test_bench_page_shows_the_committed_cpu_table():
    page = (ROOT / "docs" / "bench.md").read_text(encoding="utf-8")
    start = page.index("\n## Measured here")
    # ... to the next section of the same level or above
    end = min([i for i in (page.find("\n## ", start + 1), page.find("\n# ", start)) if i > 0]
              + [len(page)])
    section = page[start:end]
    committed = table_rows(BENCH_CPU.read_text(encoding="utf-8"))
    assert committed and table_rows(section) == committed


def test_timm_side_by_side_ratios_follow_from_the_figures():
    text = (ROOT / "reports" / "bench_vs_timm_cpu.md").read_text(encoding="utf-8")
    rows = table_rows(text)
    assert [r[3] for r in rows] == ["infer", "train"]
    for r in rows:
        ms, timm_ms = float(r[8]), float(r[9].replace(",", ""))
        batch = int(r[1])
        assert float(r[4]) == pytest.approx(batch / (ms / 1e3), abs=0.05)  # img/s, 1 decimal
        # timm's img/s is images over its loop's wall time, close to batch / its mean step
        assert float(r[7]) == pytest.approx(timm_ms / ms, rel=1e-2)
