"""MobileNetV2's Table 2 (Sandler et al. 2018) recomputed from the traced ``mobilenet_v2``.

Rows are read from the trace: the stem convolution; the inverted-residual blocks
(modules with a depthwise convolution) grouped into sequences of equal output channels,
with t = depthwise channels / block input channels, c = output channels, n = blocks in
the sequence, s = stride of the first block's depthwise convolution; the last 1x1
convolution, the average pool and the classifier. The paper's printed rows are shown
where they differ; its parameter and multiply-add totals (Table 4) are set beside the
traced ones.
"""

from __future__ import annotations

import math

from cnnscope.analysis.spec.common import (
    STATUS_DIFFERS,
    STATUS_OK,
    Flag,
    SpecTable,
    Tracer,
    compare,
    hw,
    in_channels,
    is_conv,
    is_linear,
    kernel_text,
    out_channels,
    stride_text,
    thousands,
    under,
    visible,
    weight_count,
)
from cnnscope.trace.records import LayerRecord, ModelReport

MODEL = "mobilenet_v2"
SOURCE = ("Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018, "
          "Table 2 (and Table 4 for the totals)")
COLUMNS = ("input", "operator", "t", "c", "n", "s", "check")

# Sandler et al. 2018, Table 2, transcribed from the paper ("224^2 x 3" written 224x224x3;
# "-" where the paper has no value; c = k is the number of classes).
PAPER_TABLE2: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("224x224x3", "conv2d", "-", "32", "1", "2"),
    ("112x112x32", "bottleneck", "1", "16", "1", "1"),
    ("112x112x16", "bottleneck", "6", "24", "2", "2"),
    ("56x56x24", "bottleneck", "6", "32", "3", "2"),
    ("28x28x32", "bottleneck", "6", "64", "4", "2"),
    ("14x14x64", "bottleneck", "6", "96", "3", "1"),
    ("14x14x96", "bottleneck", "6", "160", "3", "2"),
    ("7x7x160", "bottleneck", "6", "320", "1", "1"),
    ("7x7x320", "conv2d 1x1", "-", "1280", "1", "1"),
    ("7x7x1280", "avgpool 7x7", "-", "-", "1", "-"),
    ("1x1x1280", "conv2d 1x1", "-", "k", "-", "-"),
)
# Table 4 (ImageNet comparison), MobileNetV2 at width 1.0: 3.4M parameters, 300M MAdds.
PAPER_PARAMS_M = "3.4"
PAPER_MADDS_M = "300"


def _hwc(shape) -> str:
    return f"{hw(shape)}x{shape[1]}"


def _depthwise(recs: list[LayerRecord]) -> LayerRecord | None:
    return next((r for r in recs if is_conv(r) and (r.groups or 1) > 1
                 and r.groups == in_channels(r)), None)


def traced_rows(report: ModelReport) -> list[tuple[str, str, str, str, str, str]]:
    """(input, operator, t, c, n, s) rows read from the trace, in the paper's layout."""
    units: dict[str, None] = {}
    for r in visible(report):
        parts = r.name.split(".")
        units.setdefault(".".join(parts[:2]) if parts[0] == "features" else parts[0])
    rows: list[list[str]] = []
    last_c = None
    for unit in units:
        recs = under(report, unit)
        convs = [r for r in recs if is_conv(r)]
        dw = _depthwise(recs)
        first = recs[0]
        if dw is not None:
            c = out_channels(convs[-1])
            if rows and rows[-1][1] == "bottleneck" and last_c == c:
                rows[-1][4] = str(int(rows[-1][4]) + 1)
                continue
            t = out_channels(dw) // in_channels(convs[0])
            rows.append([_hwc(first.input_shapes[0]), "bottleneck", str(t), str(c), "1",
                         stride_text(dw)])
            last_c = c
        elif convs:
            conv = convs[0]
            rows.append([_hwc(conv.input_shapes[0]), f"conv2d {kernel_text(conv)}", "-",
                         str(out_channels(conv)), "1", stride_text(conv)])
            last_c = None
        elif any(r.type.endswith("AvgPool2d") for r in recs):
            pool = next(r for r in recs if r.type.endswith("AvgPool2d"))
            rows.append([_hwc(pool.input_shapes[0]), f"avgpool {hw(pool.input_shapes[0])}",
                         "-", "-", "1", "-"])
        elif any(is_linear(r) for r in recs):
            fc = next(r for r in recs if is_linear(r))
            rows.append([f"1x1x{fc.input_shapes[0][-1]}", "linear", "-",
                         str(fc.output_shape[-1]), "1", "-"])
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _same(traced: str, printed: str, column: str) -> bool:
    if printed in ("-", "k") and column in ("t", "c", "n", "s"):
        return True  # the paper prints no number to compare with
    if column == "operator":
        # The paper names the kernel only for 1x1 convolutions ("conv2d" is the 3x3 stem),
        # and draws the classifier as a 1x1 convolution (same weights on a 1x1 map).
        return (traced == printed or traced.startswith(printed + " ")
                or (traced == "linear" and printed == "conv2d 1x1"))
    return traced == printed


def build(trace: Tracer) -> SpecTable:
    """MobileNetV2 Table 2 from the trace, with the paper's totals beside the traced ones."""
    report = trace(MODEL)
    traced = traced_rows(report)
    rows, row_notes, notes, flags = [], [], [], []
    for i in range(max(len(traced), len(PAPER_TABLE2))):
        t = traced[i] if i < len(traced) else ("-",) * 6
        p = PAPER_TABLE2[i] if i < len(PAPER_TABLE2) else None
        cells, row_flags = list(t), []
        if p is not None:
            for j, col in enumerate(COLUMNS[:6]):
                if not _same(t[j], p[j], col):
                    row_flags.append(Flag(f"row {i + 1}", col, t[j], p[j], STATUS_DIFFERS,
                                          f"{col}: traced {t[j]}, the paper prints {p[j]}"))
                    cells[j] = f"{t[j]} (paper {p[j]})"
        note = ""
        if row_flags or p is None:
            n = len(notes) + 1
            note = (f"[{n}] row {i + 1}: " + ("; ".join(f.reason for f in row_flags)
                                              if row_flags else "not in the paper's table") + ".")
            notes.append(note)
            flags.extend(row_flags)
            cells.append(f"differs [{n}]" if row_flags else f"not in paper [{n}]")
        else:
            cells.append(STATUS_OK)
        rows.append(tuple(cells))
        row_notes.append(note)

    params = report.totals.params
    weights = sum(weight_count(r) for r in visible(report))
    bn = sum(r.params for r in visible(report) if r.type.startswith("BatchNorm"))
    biases = params - weights - bn
    macs = report.totals.macs
    for label, value, printed, reason in (
            ("params (traced)", params, PAPER_PARAMS_M,
             f"params: traced {thousands(params)} = {params / 1e6:.2f}M; the paper prints "
             f"{PAPER_PARAMS_M}M. Of the traced count (which, like torchvision's, includes "
             f"the batch norms) {thousands(bn)} are batch-norm scales and shifts and "
             f"{thousands(biases)} the classifier's biases; the convolution and classifier "
             f"weights alone are {thousands(weights)} = {weights / 1e6:.2f}M"
             + (f", which gives the paper's {PAPER_PARAMS_M}M when truncated to one decimal"
                if math.floor(weights / 1e5) / 10 == float(PAPER_PARAMS_M) else "")),
            ("MAdds (traced)", macs, PAPER_MADDS_M,
             f"MAdds: traced {thousands(macs)} = {macs / 1e6:.1f}M; the paper prints "
             f"{PAPER_MADDS_M}M, a round figure ({(float(PAPER_MADDS_M) - macs / 1e6) / (macs / 1e6):+.2%})")):
        status = compare(value / 1e6, printed)
        note, check = "", f"paper {printed}M: {status}"
        if status != STATUS_OK:
            n = len(notes) + 1
            flags.append(Flag(label.split(" ")[0], "total", f"{value / 1e6:.2f}M", printed + "M",
                              status, reason))
            note = f"[{n}] {reason}."
            notes.append(note)
            check += f" [{n}]"
        rows.append((label, thousands(value), "", "", "", "", check))
        row_notes.append(note)
    notes.extend([
        "t: expansion factor (hidden channels / block input channels); c: output channels; "
        "n: blocks in the sequence; s: stride of its first block (the others have stride 1). "
        "All read from the traced convolutions.",
        "The paper writes the stem as \"conv2d\" (a 3x3 convolution, stride 2) and the "
        "classifier as \"conv2d 1x1\" with k outputs; the zoo model has a linear layer "
        "there, the same weights on a 1x1 map.",
        "MAdds: multiply-adds of convolutions and the classifier at 3x224x224, biases "
        "excluded.",
    ])
    return SpecTable(
        key="mobilenet_v2", title="MobileNetV2, Table 2: traced mobilenet_v2 vs. the paper",
        source=SOURCE, columns=COLUMNS, rows=tuple(rows), row_notes=tuple(row_notes),
        notes=tuple(notes), flags=tuple(flags), models=(MODEL,),
        data={"model": MODEL, "rows": [list(r) for r in traced], "params": params,
              "weights": weights, "batch_norm_params": bn, "macs": macs,
              "paper_params_m": PAPER_PARAMS_M, "paper_madds_m": PAPER_MADDS_M},
    )
