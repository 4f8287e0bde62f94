"""VGG's Table 1 (configurations) and Table 2 (parameters) recomputed from the traces.

Configurations A, B, D, E are the zoo's vgg11, vgg13, vgg16, vgg19. Each cell is read from
the trace: the convolutions between two max pools written as the paper writes them
("conv3-64": receptive field 3, 64 channels), the fully connected layers ("FC-4096"), the
number of weight layers and the parameter count. A-LRN and C (with 1x1 convolutions) are
not in the zoo.
"""

from __future__ import annotations

from cnnscope.analysis.spec.common import (
    STATUS_DIFFERS,
    STATUS_OK,
    Flag,
    SpecTable,
    Tracer,
    compare,
    is_conv,
    is_linear,
    is_pool,
    out_channels,
    thousands,
    visible,
    weight_count,
)
from cnnscope.trace.records import ModelReport

SOURCE = ("Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image "
          "Recognition, ICLR 2015, Tables 1 and 2")
MODELS = {"A": "vgg11", "B": "vgg13", "D": "vgg16", "E": "vgg19"}

# Simonyan & Zisserman 2015, Table 1 (ConvNet configurations), transcribed from the
# paper: the convolutions of the five blocks, then FC-4096, FC-4096, FC-1000, soft-max.
PAPER_BLOCKS = {
    "A": ("conv3-64", "conv3-128", "conv3-256, conv3-256", "conv3-512, conv3-512",
          "conv3-512, conv3-512"),
    "B": ("conv3-64, conv3-64", "conv3-128, conv3-128", "conv3-256, conv3-256",
          "conv3-512, conv3-512", "conv3-512, conv3-512"),
    "D": ("conv3-64, conv3-64", "conv3-128, conv3-128", "conv3-256, conv3-256, conv3-256",
          "conv3-512, conv3-512, conv3-512", "conv3-512, conv3-512, conv3-512"),
    "E": ("conv3-64, conv3-64", "conv3-128, conv3-128",
          "conv3-256, conv3-256, conv3-256, conv3-256",
          "conv3-512, conv3-512, conv3-512, conv3-512",
          "conv3-512, conv3-512, conv3-512, conv3-512"),
}
PAPER_WEIGHT_LAYERS = {"A": "11", "B": "13", "D": "16", "E": "19"}
PAPER_FC = ("FC-4096", "FC-4096", "FC-1000")
# Table 2, "Number of parameters (in millions)".
PAPER_PARAMS_M = {"A": "133", "B": "133", "D": "138", "E": "144"}


def _dims(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def column(report: ModelReport) -> dict[str, str]:
    """One configuration: input, block1..block5, pool1..pool5, fc1..fc3, weight layers."""
    c, h, w = report.input_size
    col = {"input": f"{h} x {w} {'RGB' if c == 3 else f'{c}-channel'} image"}
    block, blocks, pools, fcs = [], [], [], []
    for r in visible(report):
        if is_conv(r):
            block.append(f"conv{r.kernel_size[0]}-{out_channels(r)}")
        elif is_pool(r) and r.kernel_size is not None:
            blocks.append(", ".join(block))
            block = []
            pools.append(f"maxpool {r.kernel_size[0]}x{r.kernel_size[1]}/{r.stride[0]}")
        elif is_linear(r):
            fcs.append(f"FC-{r.output_shape[-1]}")
    for i, text in enumerate(blocks, 1):
        col[f"block{i}"] = text
    for i, text in enumerate(pools, 1):
        col[f"pool{i}"] = text
    for i, text in enumerate(fcs, 1):
        col[f"fc{i}"] = text
    col["weight layers"] = str(sum(1 for r in visible(report) if is_conv(r) or is_linear(r)))
    return col


def build(trace: Tracer) -> SpecTable:
    """VGG configurations A, B, D, E with traced parameter counts beside Table 2's."""
    reports = {k: trace(m) for k, m in MODELS.items()}
    cols = {k: column(r) for k, r in reports.items()}
    headers = tuple(f"{k} ({m})" for k, m in MODELS.items())
    columns = ("layer", *headers)
    rows, row_notes, notes, flags = [], [], [], []

    def add(label: str, key: str, paper: dict[str, str] | None) -> None:
        cells, row_flags = [], []
        for k, header in zip(MODELS, headers):
            text = cols[k].get(key, "")
            printed = paper[k] if paper else None
            if printed is not None and text != printed:
                row_flags.append(Flag(label, header, text, printed, STATUS_DIFFERS,
                                      f"{header}: traced {text!r}, the paper prints {printed!r}"))
                text = f"{text} (paper {printed})"
            cells.append(text)
        note = ""
        if row_flags:
            note = f"[{len(notes) + 1}] {label}: " + "; ".join(f.reason for f in row_flags) + "."
            notes.append(note)
            flags.extend(row_flags)
        rows.append((label, *cells))
        row_notes.append(note)

    add("input", "input", {k: "224 x 224 RGB image" for k in MODELS})
    for i in range(1, 6):
        add(f"block {i}", f"block{i}", {k: PAPER_BLOCKS[k][i - 1] for k in MODELS})
        add("maxpool", f"pool{i}", None)
    for i, fc in enumerate(PAPER_FC, 1):
        add("FC", f"fc{i}", {k: fc for k in MODELS})
    add("weight layers", "weight layers", PAPER_WEIGHT_LAYERS)

    params = {k: reports[k].totals.params for k in MODELS}
    rows.append(("params (traced)", *(thousands(params[k]) for k in MODELS)))
    rows.append(("params, millions (traced)", *(f"{params[k] / 1e6:.2f}" for k in MODELS)))
    rows.append(("params, millions (paper Table 2)", *(PAPER_PARAMS_M[k] for k in MODELS)))
    row_notes.extend(["", "", ""])
    checks, check_notes = [], []
    for k in MODELS:
        status = compare(params[k] / 1e6, PAPER_PARAMS_M[k])
        if status == STATUS_OK:
            checks.append(STATUS_OK)
            continue
        n = len(notes) + 1
        reason = (f"{k}: traced {thousands(params[k])} parameters = {params[k] / 1e6:.2f}M; "
                  f"Table 2 prints {PAPER_PARAMS_M[k]}M")
        flags.append(Flag("params", k, f"{params[k] / 1e6:.2f}", PAPER_PARAMS_M[k], status, reason))
        notes.append(f"[{n}] {reason}.")
        check_notes.append(notes[-1])
        checks.append(f"{status} [{n}]")
    rows.append(("check (params)", *checks))
    row_notes.append(" ".join(check_notes))
    rows.append(("MACs (traced, x10^9)", *(f"{reports[k].totals.macs / 1e9:.2f}" for k in MODELS)))
    row_notes.append("")
    geometry = {(r.kernel_size, r.stride, r.padding) for rep in reports.values()
                for r in visible(rep) if is_conv(r)}
    if len(geometry) == 1:
        (k, st, pad), = geometry
        notes.append(f"Every convolution is {'x'.join(map(str, k))} with stride "
                     f"{_dims(st)} and padding {_dims(pad)} (traced).")
    weights_only = {k: sum(weight_count(r) for r in visible(reports[k])) for k in MODELS}
    same = all(compare(weights_only[k] / 1e6, PAPER_PARAMS_M[k]) == compare(
        params[k] / 1e6, PAPER_PARAMS_M[k]) for k in MODELS)
    notes.append("params: every parameter, biases included"
                 + ("; the weights alone round to the same millions." if same else
                    "; the weights alone round differently: " + ", ".join(
                        f"{k} {weights_only[k] / 1e6:.2f}M" for k in MODELS) + "."))
    identity = all(r.input_shapes[0] == r.output_shape for rep in reports.values()
                   for r in visible(rep) if r.type == "AdaptiveAvgPool2d")
    notes.append("soft-max: the paper's last layer is not a module of the zoo models (they "
                 "return logits)." + (" torchvision's adaptive average pool before the "
                                      "classifier is an identity at the default input "
                                      "(traced: same shape in and out)." if identity else ""))
    notes.append("A-LRN and C are not in the zoo: Table 2 gives them 133M and 134M.")
    return SpecTable(
        key="vgg", title="VGG, Tables 1-2: traced vgg11/13/16/19 (configurations A, B, D, E)",
        source=SOURCE, columns=columns, rows=tuple(rows), row_notes=tuple(row_notes),
        notes=tuple(notes), flags=tuple(flags), models=tuple(MODELS.values()),
        data={k: {"model": MODELS[k], "params": params[k], "macs": reports[k].totals.macs,
                  "weight_layers": int(cols[k]["weight layers"]),
                  "paper_params_m": PAPER_PARAMS_M[k]} for k in MODELS},
    )
