"""DenseNet's Table 1 (Huang et al. 2017) recomputed from the traced 121/169/201/264.

Rows follow the paper: stem convolution and pooling, dense blocks and transition layers,
the classification layer. Each cell is read from the trace: the kernel sizes of the
first dense layer's convolutions and the number of dense layers of each block, the
transition's convolution and pool, the output sizes, and the channel count after each
block and transition (the output channels of its last record). The networks' parameter
counts and multiply-adds come from the same traces.
"""

from __future__ import annotations

import re

from cnnscope.analysis.spec.common import (
    STATUS_DIFFERS,
    Flag,
    SpecTable,
    Tracer,
    hw,
    is_conv,
    is_linear,
    is_pool,
    kernel_text,
    out_channels,
    stride_text,
    thousands,
    under,
    visible,
)
from cnnscope.trace.records import ModelReport

SOURCE = "Huang et al., Densely Connected Convolutional Networks, CVPR 2017, Table 1 (k = 32)"
MODELS = ("densenet121", "densenet169", "densenet201", "densenet264")

# Huang et al. 2017, Table 1, transcribed from the paper (also in shared/seeds/003):
# dense layers per block for each network, and the cells every network shares.
PAPER_BLOCKS = {"densenet121": (6, 12, 24, 16), "densenet169": (6, 12, 32, 32),
                "densenet201": (6, 12, 48, 32), "densenet264": (6, 12, 64, 48)}
PAPER_COMMON = {
    "conv": ("112x112", "7x7 conv, stride 2"),
    "pool": ("56x56", "3x3 max pool, stride 2"),
    "block1": ("56x56", "[1x1 conv; 3x3 conv] x {}"),
    "trans1.conv": ("56x56", "1x1 conv"),
    "trans1.pool": ("28x28", "2x2 average pool, stride 2"),
    "block2": ("28x28", "[1x1 conv; 3x3 conv] x {}"),
    "trans2.conv": ("28x28", "1x1 conv"),
    "trans2.pool": ("14x14", "2x2 average pool, stride 2"),
    "block3": ("14x14", "[1x1 conv; 3x3 conv] x {}"),
    "trans3.conv": ("14x14", "1x1 conv"),
    "trans3.pool": ("7x7", "2x2 average pool, stride 2"),
    "block4": ("7x7", "[1x1 conv; 3x3 conv] x {}"),
    "gap": ("1x1", "7x7 global average pool"),
    "fc": ("", "1000D fully-connected, softmax"),
}
_LABELS = {"conv": "Convolution", "pool": "Pooling", "gap": "Classification Layer",
           "fc": "Classification Layer"}


def _label(key: str) -> str:
    if key in _LABELS:
        return _LABELS[key]
    if key.startswith("block"):
        return f"Dense Block ({key[5:]})"
    return f"Transition Layer ({key[5]})"


def _top_modules(report: ModelReport, pattern: str) -> list[str]:
    rx = re.compile(pattern)
    seen: dict[str, None] = {}
    for r in visible(report):
        parts = r.name.split(".")
        if len(parts) > 1 and rx.match(parts[1]):
            seen.setdefault(".".join(parts[:2]))
    return list(seen)


def column(report: ModelReport) -> dict[str, tuple[str, str, int | None]]:
    """One network's column: row key -> (output size, cell text, channels after)."""
    col: dict[str, tuple[str, str, int | None]] = {}
    stem = under(report, "features.conv0")[0]
    pool0 = next(r for r in under(report, "features.pool0"))
    col["conv"] = (hw(stem.output_shape),
                   f"{kernel_text(stem)} conv, stride {stride_text(stem)}", out_channels(stem))
    col["pool"] = (hw(pool0.output_shape),
                   f"{kernel_text(pool0)} max pool, stride {stride_text(pool0)}",
                   out_channels(pool0))
    for prefix in _top_modules(report, r"^(denseblock|transition)\d+$"):
        name = prefix.split(".")[1]
        recs = under(report, prefix)
        if name.startswith("denseblock"):
            layers = _top_layers(recs, prefix)
            first = [r for r in under(report, layers[0]) if is_conv(r)]
            inner = "; ".join(f"{kernel_text(r)} conv" for r in first)
            col[f"block{name[10:]}"] = (hw(recs[-1].output_shape), f"[{inner}] x {len(layers)}",
                                        out_channels(recs[-1]))
        else:
            i = name[10:]
            conv = next(r for r in recs if is_conv(r))
            pool = next(r for r in recs if is_pool(r))
            col[f"trans{i}.conv"] = (hw(conv.output_shape), f"{kernel_text(conv)} conv",
                                     out_channels(conv))
            kind = "average" if dict(pool.extra).get("pool") == "avg" else "max"
            col[f"trans{i}.pool"] = (hw(pool.output_shape),
                                     f"{kernel_text(pool)} {kind} pool, stride {stride_text(pool)}",
                                     out_channels(pool))
    gap = next(r for r in under(report, "avgpool"))
    fc = next(r for r in visible(report) if is_linear(r))
    col["gap"] = (hw(gap.output_shape), f"{hw(gap.input_shapes[0])} global average pool", None)
    col["fc"] = ("", f"{fc.output_shape[-1]}D fully-connected", None)
    return col


def _top_layers(recs, prefix: str) -> list[str]:
    depth = prefix.count(".") + 2
    seen: dict[str, None] = {}
    for r in recs:
        parts = r.name.split(".")
        if len(parts) >= depth and parts[depth - 1].startswith("denselayer"):
            seen.setdefault(".".join(parts[:depth]))
    return list(seen)


def growth_rate(report: ModelReport) -> int:
    """k: the output channels of a dense layer's 3x3 convolution (all equal)."""
    ks = {out_channels(r) for r in visible(report)
          if is_conv(r) and ".denselayer" in r.name and kernel_text(r) == "3x3"}
    return ks.pop() if len(ks) == 1 else -1


def build(trace: Tracer) -> SpecTable:
    """DenseNet Table 1 with channel counts after every block and transition, and params
    (``trace.info``: the registry's reference counts)."""
    reports = {m: trace(m) for m in MODELS}
    cols = {m: column(reports[m]) for m in MODELS}
    headers = tuple(f"DenseNet-{m[8:]}" for m in MODELS)
    columns = ("layers", "output size", *headers)
    rows: list[tuple[str, ...]] = []
    row_notes: list[str] = []
    notes: list[str] = []
    flags: list[Flag] = []

    for key, (paper_out, paper_text) in PAPER_COMMON.items():
        outs = {cols[m][key][0] for m in MODELS}
        out = outs.pop() if len(outs) == 1 else "/".join(cols[m][key][0] for m in MODELS)
        row_flags = []
        if out != paper_out:
            row_flags.append(Flag(_label(key), "output size", out, paper_out, STATUS_DIFFERS,
                                  f"output size: traced {out}, the paper prints {paper_out}"))
            out = f"{out} (paper {paper_out})"
        cells = []
        for m, header in zip(MODELS, headers):
            text = cols[m][key][1]
            printed = paper_text
            if key.startswith("block"):
                printed = paper_text.format(PAPER_BLOCKS[m][int(key[5:]) - 1])
            if key == "fc":
                printed = printed.removesuffix(", softmax")  # see the softmax note
            if text != printed:
                row_flags.append(Flag(_label(key), header, text, printed, STATUS_DIFFERS,
                                      f"{header}: traced {text!r}, the paper prints {printed!r}"))
                text = f"{text} (paper {printed})"
            cells.append(text)
        note = ""
        if row_flags:
            note = f"[{len(notes) + 1}] {_label(key)}: " + "; ".join(f.reason for f in row_flags) + "."
            notes.append(note)
            flags.extend(row_flags)
        rows.append((_label(key), out, *cells))
        row_notes.append(note)
        if key == "pool" or key.startswith("block") or key.endswith(".pool"):
            where = "stem" if key == "pool" else _label(key)
            rows.append((f"channels after {where}", "",
                         *(str(cols[m][key][2]) for m in MODELS)))
            row_notes.append("")

    infos = {m: trace.info(m) for m in MODELS}
    rows.append(("growth rate k", "", *(str(growth_rate(reports[m])) for m in MODELS)))
    rows.append(("params (traced)", "", *(thousands(reports[m].totals.params) for m in MODELS)))
    rows.append(("params (torchvision)", "",
                 *(thousands(infos[m].reference_params) if infos[m].reference_params else "-"
                   for m in MODELS)))
    rows.append(("MACs (traced, x10^9)", "",
                 *(f"{reports[m].totals.macs / 1e9:.2f}" for m in MODELS)))
    row_notes.extend(["", "", "", ""])
    notes.extend([
        "Each \"conv\" of the paper is BN-ReLU-Conv; the batch norms and ReLUs are traced in "
        "the same rows (the stem is Conv-BN-ReLU, and BN-ReLU after the last block belongs to "
        "the classification layer). Channels after a dense block = channels in + layers x k; "
        "a transition halves them (compression 0.5).",
        "params (torchvision): the published count of torchvision's weights (meta "
        "num_params), a reference for the traced one; torchvision has no DenseNet-264 and "
        "the paper's Table 1 prints no parameter counts.",
        "softmax: the classification layer's softmax is not a module of the zoo models "
        "(they return logits; softmax belongs to the loss). The global average pool is "
        "adaptive; at 3x224x224 it pools the 7x7 map the paper's row names.",
    ])
    data = {m: {"params": reports[m].totals.params, "macs": reports[m].totals.macs,
                "growth_rate": growth_rate(reports[m]),
                "channels": {k: v[2] for k, v in cols[m].items() if v[2] is not None},
                "blocks": [int(cols[m][f"block{i}"][1].rsplit("x ", 1)[1]) for i in range(1, 5)]}
            for m in MODELS}
    return SpecTable(
        key="densenet",
        title="DenseNet, Table 1: traced densenet121/169/201/264 vs. the paper",
        source=SOURCE, columns=columns, rows=tuple(rows), row_notes=tuple(row_notes),
        notes=tuple(notes), flags=tuple(flags), models=MODELS, data=data,
    )
