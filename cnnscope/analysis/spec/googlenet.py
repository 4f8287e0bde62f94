"""GoogLeNet's Table 1 (Szegedy et al. 2015) recomputed from the traced ``googlenet``.

Every computed cell comes from the trace: rows are the model's top-level modules in call
order, the branch columns (#1x1, #3x3 reduce ...) are the output channels of the traced
convolutions classified by the dataflow (a 1x1 conv feeding a kxk conv is a "kxk reduce",
a conv fed by a pool is the "pool proj"), params are weights without biases in units of
1024 and ops are multiply-adds, as the paper counts them. The paper's printed values
(``PAPER_TABLE1``) are reference data shown beside them; a paper figure that does not
follow from the layer sizes is flagged with the arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnscope.analysis.spec.common import (
    NEAR,
    STATUS_DIFFERS,
    STATUS_NEAR,
    STATUS_OK,
    Flag,
    SpecTable,
    Tracer,
    check_cell,
    compare,
    hwc,
    is_conv,
    is_linear,
    is_pool,
    kernel_text,
    longest_weight_path,
    out_channels,
    stride_text,
    thousands,
    visible,
    weight_count,
    weight_formula,
)
from cnnscope.trace.records import LayerRecord, ModelReport

MODEL = "googlenet"
SOURCE = ("Szegedy et al., Going Deeper with Convolutions, CVPR 2015, Table 1 "
          "(params: weights without biases, K = 1024; ops: multiply-adds, M = 10^6)")

BRANCH_COLUMNS = ("#1x1", "#3x3 reduce", "#3x3", "#5x5 reduce", "#5x5", "pool proj")
COLUMNS = ("type", "patch size/stride", "output size", "depth", *BRANCH_COLUMNS,
           "params", "paper params", "ops", "paper ops", "check")


@dataclass(frozen=True)
class PaperRow:
    """One row of Table 1 exactly as printed ("" where the paper leaves the cell blank)."""

    key: str  # the zoo module the row describes (a layout mapping, not a number)
    type: str
    patch: str
    output: str
    depth: str
    branches: tuple[str, str, str, str, str, str]  # BRANCH_COLUMNS, as printed
    params_k: str  # "params", in K (1024 weights)
    ops_m: str  # "ops", in M (10^6 multiply-adds)


_ = ("",) * 6
# Szegedy et al. 2015, Table 1 ("GoogLeNet incarnation of the Inception architecture"),
# transcribed from the paper (also in shared/seeds/003). The zoo's GOOGLENET_TABLE1 holds
# the same inception rows to build the model; this copy is the independent reference.
PAPER_TABLE1: tuple[PaperRow, ...] = (
    PaperRow("conv1", "convolution", "7x7/2", "112x112x64", "1", _, "2.7", "34"),
    PaperRow("maxpool1", "max pool", "3x3/2", "56x56x64", "0", _, "", ""),
    PaperRow("conv2", "convolution", "3x3/1", "56x56x192", "2",
             ("", "64", "192", "", "", ""), "112", "360"),
    PaperRow("maxpool2", "max pool", "3x3/2", "28x28x192", "0", _, "", ""),
    PaperRow("inception3a", "inception (3a)", "", "28x28x256", "2",
             ("64", "96", "128", "16", "32", "32"), "159", "128"),
    PaperRow("inception3b", "inception (3b)", "", "28x28x480", "2",
             ("128", "128", "192", "32", "96", "64"), "380", "304"),
    PaperRow("maxpool3", "max pool", "3x3/2", "14x14x480", "0", _, "", ""),
    PaperRow("inception4a", "inception (4a)", "", "14x14x512", "2",
             ("192", "96", "208", "16", "48", "64"), "364", "73"),
    PaperRow("inception4b", "inception (4b)", "", "14x14x512", "2",
             ("160", "112", "224", "24", "64", "64"), "437", "88"),
    PaperRow("inception4c", "inception (4c)", "", "14x14x512", "2",
             ("128", "128", "256", "24", "64", "64"), "463", "100"),
    PaperRow("inception4d", "inception (4d)", "", "14x14x528", "2",
             ("112", "144", "288", "32", "64", "64"), "580", "119"),
    PaperRow("inception4e", "inception (4e)", "", "14x14x832", "2",
             ("256", "160", "320", "32", "128", "128"), "840", "170"),
    PaperRow("maxpool4", "max pool", "3x3/2", "7x7x832", "0", _, "", ""),
    PaperRow("inception5a", "inception (5a)", "", "7x7x832", "2",
             ("256", "160", "320", "32", "128", "128"), "1072", "54"),
    PaperRow("inception5b", "inception (5b)", "", "7x7x1024", "2",
             ("384", "192", "384", "48", "128", "128"), "1388", "71"),
    PaperRow("avgpool", "avg pool", "7x7/1", "1x1x1024", "0", _, "", ""),
    PaperRow("dropout", "dropout (40%)", "", "1x1x1024", "0", _, "", ""),
    PaperRow("fc", "linear", "", "1x1x1000", "1", _, "1000", "1"),
    PaperRow("softmax", "softmax", "", "1x1x1000", "0", _, "", ""),
)

_TYPE_NAMES = {"Conv2d": "convolution", "MaxPool2d": "max pool", "AvgPool2d": "avg pool",
               "AdaptiveAvgPool2d": "avg pool", "Dropout": "dropout", "Linear": "linear"}


@dataclass(frozen=True)
class TracedRow:
    """The cells of one Table 1 row as the trace gives them."""

    key: str
    type: str
    patch: str
    output: str
    depth: int
    branches: dict[str, str]
    weights: int  # conv + linear weights, biases excluded
    macs: int
    records: tuple[LayerRecord, ...]


def row_groups(report: ModelReport) -> list[tuple[str, list[LayerRecord]]]:
    """The traced records grouped into Table 1's rows, in call order.

    A row is a top-level module. Two conventions of the paper's table fold modules
    together: a module named ``X_reduce`` is the reduction of ``X`` and shares its row
    (Table 1's second convolution row has depth 2: 1x1 reduce then 3x3), and a local
    response normalization, which the table does not list, joins the row before it
    (it has neither weights nor multiply-adds and keeps the shape).
    """
    groups: dict[str, list[LayerRecord]] = {}
    previous = None
    for r in visible(report):
        top = r.name.split(".")[0].split("#")[0]
        if r.type == "LocalResponseNorm" and previous is not None:
            key = previous
        else:
            key = top.removesuffix("_reduce")
        groups.setdefault(key, []).append(r)
        previous = key
    return list(groups.items())


def _downstream_conv(start: LayerRecord, records: list[LayerRecord]) -> LayerRecord | None:
    """The first convolution fed (through activations) by ``start``, within ``records``."""
    consumers: dict[int, list[LayerRecord]] = {}
    for r in records:
        for i in r.inputs:
            consumers.setdefault(i, []).append(r)
    frontier = [start.index]
    seen = set()
    while frontier:
        nxt = []
        for i in frontier:
            for c in consumers.get(i, []):
                if c.index in seen:
                    continue
                seen.add(c.index)
                if is_conv(c):
                    return c
                if c.type in ("ReLU", "BatchNorm2d"):
                    nxt.append(c.index)
        frontier = nxt
    return None


def _upstream_is_pool(conv: LayerRecord, by_index: dict[int, LayerRecord]) -> bool:
    """Whether ``conv`` reads a pool of the same row (through activations only)."""
    frontier = list(conv.inputs)
    while frontier:
        i = frontier.pop()
        r = by_index.get(i)
        if r is None:
            continue
        if is_pool(r):
            return True
        if r.type in ("ReLU", "BatchNorm2d"):
            frontier.extend(r.inputs)
    return False


def branch_columns(records: list[LayerRecord]) -> dict[str, str]:
    """#1x1 / #kxk reduce / #kxk / pool proj read off the traced convolutions of a row."""
    by_index = {r.index: r for r in records}
    cols: dict[str, list[int]] = {}
    for r in records:
        if not is_conv(r):
            continue
        k = kernel_text(r)
        if k != "1x1":
            col = f"#{k}"
        elif _upstream_is_pool(r, by_index):
            col = "pool proj"
        else:
            nxt = _downstream_conv(r, records)
            col = f"#{kernel_text(nxt)} reduce" if nxt is not None else "#1x1"
        cols.setdefault(col, []).append(out_channels(r))
    return {c: "+".join(map(str, v)) for c, v in cols.items()}


def traced_row(report: ModelReport, key: str, records: list[LayerRecord]) -> TracedRow:
    types = dict(report.module_types)
    lrn = any(r.type == "LocalResponseNorm" for r in records)
    main = [r for r in records if is_conv(r) or is_pool(r) or is_linear(r) or r.type == "Dropout"]
    if types.get(key) == "Inception":
        kind, patch = f"inception ({key.removeprefix('inception')})", ""
    else:
        last = main[-1] if main else records[-1]
        kind = _TYPE_NAMES.get(last.type, last.type)
        patch = f"{kernel_text(last)}/{stride_text(last)}" if last.kernel_size else ""
    if lrn:
        kind += " + LRN"
    return TracedRow(
        key=key, type=kind, patch=patch, output=hwc(records[-1].output_shape),
        depth=longest_weight_path(records), branches=branch_columns(records),
        weights=sum(weight_count(r) for r in records), macs=sum(r.macs for r in records),
        records=tuple(records),
    )


def _positions(row: TracedRow) -> int | None:
    """Output positions shared by every weight layer of the row (ops = positions x weights)."""
    sizes = {r.output_shape[2] * r.output_shape[3] if len(r.output_shape) == 4 else 1
             for r in row.records if is_conv(r) or is_linear(r)}
    return sizes.pop() if len(sizes) == 1 else None


def _params_reason(row: TracedRow, paper: str) -> str:
    terms = [weight_formula(r) for r in row.records if is_conv(r) or is_linear(r)]
    return (f"params: {' + '.join(terms)} = {thousands(row.weights)} weights = "
            f"{row.weights / 1024:.1f}K; the paper prints {paper}K")


def _ops_reason(row: TracedRow, paper: str) -> str:
    pos = _positions(row)
    how = (f"{pos:,} output positions x {thousands(row.weights)} weights" if pos
           else "sum over its layers of H x W x C_out x C_in x k x k")
    return (f"ops: {how} = {thousands(row.macs)} multiply-adds = {row.macs / 1e6:.1f}M; "
            f"the paper prints {paper}M")


def _explain(row: TracedRow, paper: PaperRow, flags: list[Flag]) -> str:
    """Why the flagged figures of one row do not follow from its layer sizes."""
    parts = [f.reason for f in flags]
    cols = {f.column for f in flags}
    pos = _positions(row)
    if {"params", "ops"} <= cols and pos and paper.params_k and paper.ops_m:
        implied = float(paper.params_k) * 1024 * pos / 1e6
        if compare(implied, paper.ops_m) != STATUS_DIFFERS:
            parts.append(
                f"The paper's two figures agree with each other ({paper.params_k}K x {pos:,} "
                f"positions = {implied:.1f}M ~ {paper.ops_m}M): both were computed from about "
                f"{float(paper.params_k) * 1024:,.0f} weights, not from the "
                f"{thousands(row.weights)} that the layer sizes printed in the row give")
        else:
            parts.append("The paper's params and ops do not agree with each other either")
    elif cols == {"params"} and paper.ops_m:
        parts.append(f"The paper's ops ({paper.ops_m}M) do follow from the layer sizes, so "
                     f"the params figure is a slip in that column alone")
    elif cols == {"ops"} and paper.params_k:
        parts.append(f"The paper's params ({paper.params_k}K) do follow from the layer sizes, "
                     f"so the ops figure is a slip in that column alone")
    if all(f.status == STATUS_NEAR for f in flags):
        parts.append(f"Less than {NEAR:.0%} off: more than rounding the last printed digit "
                     f"explains, a small arithmetic slip")
    else:
        bad = [f.column for f in flags if f.status == STATUS_DIFFERS]
        parts.append(f"The paper's {' and '.join(bad)} "
                     f"{'figure does' if len(bad) == 1 else 'figures do'} not follow from the "
                     f"layer sizes printed in its own row")
    return ". ".join(parts) + "."


def _row_label(key: str, paper: PaperRow | None, traced: TracedRow | None) -> str:
    kind = paper.type if paper else traced.type  # type: ignore[union-attr]
    return kind if kind.startswith("inception") or kind == key else f"{key} ({kind})"


def _pct(computed: float, paper: str) -> str:
    return f"paper {(float(paper) - computed) / computed:+.1%}"


def build(trace: Tracer) -> SpecTable:
    """GoogLeNet Table 1: traced cells beside the paper's, with every difference explained."""
    report = trace(MODEL)
    traced = {key: traced_row(report, key, recs) for key, recs in row_groups(report)}
    paper_by_key = {p.key: p for p in PAPER_TABLE1}
    order = [p.key for p in PAPER_TABLE1] + [k for k in traced if k not in paper_by_key]

    rows, row_notes, notes, all_flags, data_rows = [], [], [], [], []
    for key in order:
        t, p = traced.get(key), paper_by_key.get(key)
        if t is None:  # a row of the paper with no module in the model
            n = len(notes) + 1
            rows.append((p.type, "-", "-", "-", *("-",) * 6, "-", "", "-", "", f"paper only [{n}]"))
            why = ("not a layer of the zoo model: it returns logits, the softmax belongs to the "
                   "loss" if key == "softmax" else "no traced module corresponds to this row")
            notes.append(f"[{n}] {_row_label(key, p, None)}: {why}.")
            row_notes.append(notes[-1])
            data_rows.append({"key": key, "traced": None})
            continue
        label = _row_label(key, p, t)
        flags: list[Flag] = []
        cells = {"type": t.type, "patch size/stride": t.patch, "output size": t.output,
                 "depth": str(t.depth), **{c: t.branches.get(c, "") for c in BRANCH_COLUMNS}}
        params_k, ops_m = t.weights / 1024, t.macs / 1e6
        cells["params"] = f"{params_k:.1f}K" if t.weights else ""
        cells["ops"] = f"{ops_m:.1f}M" if t.macs else ""
        if p is not None:
            printed = {"patch size/stride": p.patch, "output size": p.output, "depth": p.depth,
                       **dict(zip(BRANCH_COLUMNS, p.branches))}
            for col, value in printed.items():
                if cells[col] != value:
                    flags.append(Flag(label, col, cells[col], value, STATUS_DIFFERS,
                                      f"{col}: traced {cells[col] or 'blank'}, the paper prints "
                                      f"{value or 'blank'}"))
                    cells[col] = f"{cells[col] or '-'} (paper {value or 'blank'})"
            for col, value, printed_value, unit, reason in (
                    ("params", params_k, p.params_k, "K", _params_reason(t, p.params_k)),
                    ("ops", ops_m, p.ops_m, "M", _ops_reason(t, p.ops_m))):
                if not printed_value:
                    continue
                status = compare(value, printed_value)
                if status != STATUS_OK:
                    flags.append(Flag(label, col, cells[col], printed_value + unit, status,
                                      f"{reason} ({_pct(value, printed_value)})"))
        n = len(notes) + 1 if flags else None
        check = check_cell(flags, n) if p is not None else f"not in paper [{len(notes) + 1}]"
        if flags:
            notes.append(f"[{n}] {label}: " + _explain(t, p, flags))
        elif p is None:
            notes.append(f"[{len(notes) + 1}] {label}: a traced module with no row in Table 1.")
        row_notes.append(notes[-1] if (flags or p is None) else "")
        all_flags.extend(flags)
        rows.append((cells["type"], cells["patch size/stride"], cells["output size"], cells["depth"],
                     *(cells[c] for c in BRANCH_COLUMNS), cells["params"],
                     f"{p.params_k}K" if p and p.params_k else "", cells["ops"],
                     f"{p.ops_m}M" if p and p.ops_m else "", check))
        data_rows.append({"key": key, "type": t.type, "output": t.output, "depth": t.depth,
                          "branches": t.branches, "weights": t.weights, "macs": t.macs,
                          "paper_params_k": p.params_k if p else None,
                          "paper_ops_m": p.ops_m if p else None,
                          "flags": [f.to_dict() for f in flags]})

    total_w = sum(t.weights for t in traced.values())
    total_macs = sum(t.macs for t in traced.values())
    paper_k = sum(float(p.params_k) for p in PAPER_TABLE1 if p.params_k)
    paper_m = sum(float(p.ops_m) for p in PAPER_TABLE1 if p.ops_m)
    rows.append(("total", "", "", "", *("",) * 6, f"{total_w / 1024:.1f}K", f"{paper_k:.1f}K",
                 f"{total_macs / 1e6:.1f}M", f"{paper_m:.0f}M", ""))
    row_notes.append("")
    biases = report.totals.params - total_w
    notes.extend([
        f"total: traced weights {thousands(total_w)} ({total_w / 1024:.1f}K) and "
        f"{thousands(total_macs)} multiply-adds; the paper columns are the sums of its printed "
        f"figures. With its {thousands(biases)} biases the model has "
        f"{thousands(report.totals.params)} parameters (auxiliary classifiers off; they run "
        f"only in training and are not in Table 1).",
        "LRN: the network has local response normalization after the first max pool and "
        "after the second convolution (the authors' Caffe model); Table 1 lists no LRN row, "
        "so each is shown with the row before it (no weights, no multiply-adds).",
        "depth: weight layers on the longest path through the row; the branch columns are "
        "the output channels of the traced convolutions, read from the dataflow (a 1x1 "
        "convolution feeding a kxk one is the kxk reduce; one fed by a pool is the pool proj).",
        "check: ok = the paper's figure is the traced one rounded to its last printed digit; "
        "near = off by more than that but less than 3%; differs = does not follow from the "
        "layer sizes printed in the same row.",
    ])
    return SpecTable(
        key="googlenet",
        title="GoogLeNet (Inception v1), Table 1: traced googlenet vs. the paper",
        source=SOURCE, columns=COLUMNS, rows=tuple(rows), row_notes=tuple(row_notes),
        notes=tuple(notes), flags=tuple(all_flags), models=(MODEL,),
        data={"model": MODEL, "input_size": list(report.input_size), "rows": data_rows,
              "total_weights": total_w, "total_macs": total_macs,
              "total_params": report.totals.params},
    )
