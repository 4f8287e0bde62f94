"""ResNet's Table 1 (He et al. 2016) recomputed from the traced 18/34/50/101/152 models.

The block shapes ("[1x1, 64; 3x3, 64; 1x1, 256] x 3") are read from the traced
convolutions of the first block of each stage (kernel sizes and output channels) and the
block count from the number of blocks; output sizes from each stage's last record; the
FLOPs row is the traced multiply-adds (the paper's "FLOPs" are multiply-adds). The paper
places the stride 2 of a downsampling bottleneck in its first 1x1 convolution: the
``*_v1`` zoo models; torchvision's ResNet "V1.5" (``resnet50`` ...) places it in the 3x3,
which costs more multiply-adds for the same weights. Both are shown.
"""

from __future__ import annotations

import math
import re

from cnnscope.analysis.spec.common import (
    STATUS_DIFFERS,
    STATUS_OK,
    Flag,
    SpecTable,
    Tracer,
    compare,
    hw,
    is_conv,
    kernel_text,
    out_channels,
    stride_text,
    thousands,
    under,
    visible,
)
from cnnscope.trace.records import ModelReport

SOURCE = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016, Table 1"

DEPTHS = (18, 34, 50, 101, 152)
# The paper's models (stride in the first 1x1 of a downsampling bottleneck) and
# torchvision's V1.5 ones (stride in the 3x3). Basic blocks have no 1x1: one model each.
PAPER_MODELS = {18: "resnet18", 34: "resnet34", 50: "resnet50_v1", 101: "resnet101_v1",
                152: "resnet152_v1"}
V15_MODELS = {18: "resnet18", 34: "resnet34", 50: "resnet50", 101: "resnet101",
              152: "resnet152"}

# He et al. 2016, Table 1, transcribed from the paper (also in shared/seeds/003): the
# paper's stacked brackets are written "[3x3, 64; 3x3, 64] x 2".
PAPER_OUTPUT = {"conv1": "112x112", "pool": "56x56", "conv2_x": "56x56", "conv3_x": "28x28",
                "conv4_x": "14x14", "conv5_x": "7x7", "head": "1x1"}
PAPER_COMMON = {"conv1": "7x7, 64, stride 2", "pool": "3x3 max pool, stride 2",
                "head": "average pool, 1000-d fc, softmax"}
PAPER_STAGES: dict[int, tuple[str, str, str, str]] = {
    18: ("[3x3, 64; 3x3, 64] x 2", "[3x3, 128; 3x3, 128] x 2",
         "[3x3, 256; 3x3, 256] x 2", "[3x3, 512; 3x3, 512] x 2"),
    34: ("[3x3, 64; 3x3, 64] x 3", "[3x3, 128; 3x3, 128] x 4",
         "[3x3, 256; 3x3, 256] x 6", "[3x3, 512; 3x3, 512] x 3"),
    50: ("[1x1, 64; 3x3, 64; 1x1, 256] x 3", "[1x1, 128; 3x3, 128; 1x1, 512] x 4",
         "[1x1, 256; 3x3, 256; 1x1, 1024] x 6", "[1x1, 512; 3x3, 512; 1x1, 2048] x 3"),
    101: ("[1x1, 64; 3x3, 64; 1x1, 256] x 3", "[1x1, 128; 3x3, 128; 1x1, 512] x 4",
          "[1x1, 256; 3x3, 256; 1x1, 1024] x 23", "[1x1, 512; 3x3, 512; 1x1, 2048] x 3"),
    152: ("[1x1, 64; 3x3, 64; 1x1, 256] x 3", "[1x1, 128; 3x3, 128; 1x1, 512] x 8",
          "[1x1, 256; 3x3, 256; 1x1, 1024] x 36", "[1x1, 512; 3x3, 512; 1x1, 2048] x 3"),
}
# The FLOPs row of Table 1, x10^9 (multiply-adds), as printed.
PAPER_FLOPS = {18: "1.8", 34: "3.6", 50: "3.8", 101: "7.6", 152: "11.3"}

_STAGE = re.compile(r"^layer(\d+)$")


def stages(report: ModelReport) -> list[str]:
    """Top-level stage modules (torchvision's layer1..layer4), in call order."""
    seen: dict[str, None] = {}
    for r in visible(report):
        top = r.name.split(".")[0]
        if _STAGE.match(top):
            seen.setdefault(top)
    return list(seen)


def stage_blocks(report: ModelReport, stage: str) -> list[str]:
    """The block prefixes of a stage ("layer1.0", "layer1.1", ...)."""
    seen: dict[str, None] = {}
    for r in under(report, stage):
        parts = r.name.split(".")
        if len(parts) > 2:
            seen.setdefault(".".join(parts[:2]))
    return list(seen)


def block_shape(report: ModelReport, stage: str) -> str:
    """'[1x1, 64; 3x3, 64; 1x1, 256] x 3' from the first block's residual-branch convs."""
    blocks = stage_blocks(report, stage)
    convs = [r for r in under(report, blocks[0])
             if is_conv(r) and ".downsample" not in r.name]
    inner = "; ".join(f"{kernel_text(r)}, {out_channels(r)}" for r in convs)
    return f"[{inner}] x {len(blocks)}"


def projection_macs(report: ModelReport) -> int:
    """Multiply-adds of the projection shortcuts (the 1x1 convs of ``downsample``)."""
    return sum(r.macs for r in visible(report) if ".downsample." in r.name and is_conv(r))


def column(report: ModelReport) -> dict[str, tuple[str, str]]:
    """One model's column: row key -> (output size, cell text)."""
    conv1 = next(r for r in under(report, "conv1") if is_conv(r))
    pool = next(r for r in under(report, "maxpool"))
    fc = next(r for r in under(report, "fc"))
    avg = next(r for r in under(report, "avgpool"))
    col = {
        "conv1": (hw(conv1.output_shape),
                  f"{kernel_text(conv1)}, {out_channels(conv1)}, stride {stride_text(conv1)}"),
        "pool": (hw(pool.output_shape),
                 f"{kernel_text(pool)} max pool, stride {stride_text(pool)}"),
    }
    for i, stage in enumerate(stages(report)):
        col[f"conv{i + 2}_x"] = (hw(under(report, stage)[-1].output_shape),
                                 block_shape(report, stage))
    col["head"] = (hw(avg.output_shape), f"average pool, {fc.output_shape[-1]}-d fc")
    return col


def _floor1(x: float) -> float:
    return math.floor(x * 10) / 10


def _flops_reason(depth: int, macs: int, option_a: int, printed: str) -> str:
    g, ga = macs / 1e9, option_a / 1e9
    text = (f"{depth}-layer: traced {thousands(macs)} multiply-adds = {g:.2f} x10^9; the paper "
            f"prints {printed} (rounding gives {g:.1f}).")
    if compare(ga, printed) == STATUS_OK:
        text += (f" Without the projection shortcuts (the paper's option A: identity shortcuts "
                 f"with zero padding, no 1x1 convolutions) it is {thousands(option_a)} = "
                 f"{ga:.2f} x10^9, which rounds to the paper's {printed}: the figure of the "
                 f"parameter-free shortcut net, which has the FLOPs of the plain {depth}-layer "
                 f"baseline (Sec. 3.3).")
    elif abs(_floor1(g) - float(printed)) < 1e-9:
        text += (f" {g:.2f} truncated to one decimal is {printed}: the paper truncates here "
                 f"but rounds elsewhere in the same row, so no single rounding rule gives all "
                 f"five figures; the traced figure agrees with the printed one to within its "
                 f"last digit.")
    return text


def build(trace: Tracer) -> SpecTable:
    """ResNet Table 1 from the traced models, with the FLOPs of both stride placements."""
    paper_reports = {d: trace(PAPER_MODELS[d]) for d in DEPTHS}
    v15_reports = {d: trace(V15_MODELS[d]) for d in DEPTHS}
    cols = {d: column(paper_reports[d]) for d in DEPTHS}
    headers = tuple(f"{d}-layer" for d in DEPTHS)
    columns = ("layer name", "output size", *headers)

    rows: list[tuple[str, ...]] = []
    row_notes: list[str] = []
    notes: list[str] = []
    flags: list[Flag] = []

    def paper_cell(key: str, depth: int) -> str:
        if key in PAPER_COMMON:
            return PAPER_COMMON[key]
        return PAPER_STAGES[depth][int(key[4]) - 2]

    for key in ("conv1", "pool", "conv2_x", "conv3_x", "conv4_x", "conv5_x", "head"):
        label = "conv2_x" if key == "pool" else ("" if key == "head" else key)
        outputs = {cols[d][key][0] for d in DEPTHS}
        output = outputs.pop() if len(outputs) == 1 else "/".join(cols[d][key][0] for d in DEPTHS)
        row_flags = []
        if output != PAPER_OUTPUT[key]:
            row_flags.append(Flag(label or key, "output size", output, PAPER_OUTPUT[key],
                                  STATUS_DIFFERS, f"output size: traced {output}, the paper "
                                  f"prints {PAPER_OUTPUT[key]}"))
            output = f"{output} (paper {PAPER_OUTPUT[key]})"
        cells = []
        for d in DEPTHS:
            text = cols[d][key][1]
            printed = paper_cell(key, d)
            if key == "head":
                printed = printed.removesuffix(", softmax")  # see the softmax note
            if text != printed:
                row_flags.append(Flag(label or key, f"{d}-layer", text, printed, STATUS_DIFFERS,
                                      f"{d}-layer: traced {text!r}, the paper prints {printed!r}"))
                text = f"{text} (paper {printed})"
            cells.append(text)
        note = ""
        if row_flags:
            note = f"[{len(notes) + 1}] {label or key}: " + "; ".join(f.reason for f in row_flags) + "."
            notes.append(note)
            flags.extend(row_flags)
        rows.append((label, output, *cells))
        row_notes.append(note)

    macs = {d: paper_reports[d].totals.macs for d in DEPTHS}
    macs15 = {d: v15_reports[d].totals.macs for d in DEPTHS}
    option_a = {d: macs[d] - projection_macs(paper_reports[d]) for d in DEPTHS}

    rows.append(("FLOPs (paper, x10^9)", "", *(PAPER_FLOPS[d] for d in DEPTHS)))
    row_notes.append("")
    rows.append(("FLOPs traced, paper stride placement (x10^9)", "",
                 *(f"{macs[d] / 1e9:.2f}" for d in DEPTHS)))
    row_notes.append("")
    checks, flop_notes = [], []
    for d in DEPTHS:
        status = compare(macs[d] / 1e9, PAPER_FLOPS[d])
        if status == STATUS_OK:
            checks.append(STATUS_OK)
            continue
        n = len(notes) + 1
        reason = _flops_reason(d, macs[d], option_a[d], PAPER_FLOPS[d])
        flags.append(Flag("FLOPs", f"{d}-layer", f"{macs[d] / 1e9:.2f}", PAPER_FLOPS[d],
                          status, reason))
        notes.append(f"[{n}] {reason}")
        flop_notes.append(notes[-1])
        checks.append(f"{status} [{n}]")
    rows.append(("check (paper vs traced)", "", *checks))
    row_notes.append(" ".join(flop_notes))
    rows.append(("FLOPs traced, no projection shortcuts (x10^9)", "",
                 *(f"{option_a[d] / 1e9:.2f}" for d in DEPTHS)))
    row_notes.append("")
    rows.append(("FLOPs traced, torchvision V1.5 (x10^9)", "",
                 *(f"{macs15[d] / 1e9:.2f}" for d in DEPTHS)))
    row_notes.append("")
    rows.append(("params (traced)", "",
                 *(thousands(paper_reports[d].totals.params) for d in DEPTHS)))
    row_notes.append("")

    # The V1 / V1.5 difference, from the traces: the first 1x1 of each downsampling block.
    diffs = []
    for d in DEPTHS:
        if macs15[d] == macs[d]:
            continue
        per_stage = []
        for stage in stages(paper_reports[d])[1:]:
            first = f"{stage}.0.conv1"
            a = next(r for r in under(v15_reports[d], first) if is_conv(r))
            b = next(r for r in under(paper_reports[d], first) if is_conv(r))
            per_stage.append(a.macs - b.macs)
        diffs.append((d, macs15[d] - macs[d], per_stage))
    v15_text = "; ".join(
        f"{d}-layer +{thousands(total)} = {' + '.join(thousands(x) for x in parts)}"
        for d, total, parts in diffs)
    notes.extend([
        "FLOPs are multiply-adds, as the paper counts them (Sec. 3.3: \"3.6 billion FLOPs "
        "(multiply-adds)\"); batch norm, ReLU, pooling and the shortcut additions are not "
        "in them. Traced at 3x224x224.",
        "Stride placement: the paper (and its Caffe models) put the stride 2 of the first "
        "bottleneck of conv3_x..conv5_x in the first 1x1 convolution; torchvision's \"V1.5\" "
        "puts it in the 3x3, so that 1x1 runs on the undownsampled map (4x the positions). "
        "Same weights; more multiply-adds: " + (v15_text or "none") + " (the first 1x1 of "
        "conv3_x, conv4_x, conv5_x). The 18/34-layer nets have basic blocks (no 1x1): one "
        "model serves both rows. The 50/101/152 columns above are the paper's placement "
        "(zoo models resnet50_v1, resnet101_v1, resnet152_v1).",
        "Projection shortcuts: the zoo models use the paper's option B (1x1 projections "
        "where the shape changes); the no-projection row subtracts those convolutions' "
        "traced multiply-adds.",
        "softmax: the last row's softmax is not a module of the zoo models (they return "
        "logits; softmax belongs to the loss).",
    ])
    return SpecTable(
        key="resnet",
        title="ResNet, Table 1: traced resnet18/34/50/101/152 vs. the paper",
        source=SOURCE, columns=columns, rows=tuple(rows), row_notes=tuple(row_notes),
        notes=tuple(notes), flags=tuple(flags),
        models=tuple(dict.fromkeys([*PAPER_MODELS.values(), *V15_MODELS.values()])),
        data={"paper_models": PAPER_MODELS, "v15_models": V15_MODELS,
              "macs": {str(d): macs[d] for d in DEPTHS},
              "macs_v15": {str(d): macs15[d] for d in DEPTHS},
              "macs_no_projection": {str(d): option_a[d] for d in DEPTHS},
              "params": {str(d): paper_reports[d].totals.params for d in DEPTHS},
              "paper_flops_e9": PAPER_FLOPS},
    )
