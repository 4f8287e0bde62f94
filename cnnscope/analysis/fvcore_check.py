"""``--counter fvcore``: cnnscope's and fvcore's counts side by side, per layer, with the
difference and its cause where it is known.

fvcore (``FlopCountAnalysis``) counts one per multiply-add of convolutions, linear layers
and matmuls (cnnscope's MACs) and adds its own rules for a few other ops (batch norm,
upsampling, adaptive pooling, normalisations); it computes no FLOPs in cnnscope's sense
(2 per multiply-add plus elementwise work). So each row sets fvcore's count beside
cnnscope's MACs, and the difference is explained by fvcore's extra rules and by the
ops it has no handler for. Pure: works on a ``ModelReport`` and fvcore's per-module
counts (``cnnscope.trace.fvcore_counter.FvcoreCounts``), imports no torch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cnnscope.results import Shown
from cnnscope.trace.records import ModelReport


def _mac_operators() -> frozenset[str]:
    """fvcore's operator keys that are multiply-adds (the op registry's ``fvcore`` field;
    imported here, not at the top: this module imports no torch)."""
    from cnnscope.ops.registry import fvcore_mac_operators

    return fvcore_mac_operators()


# What fvcore adds for its other handlers (fvcore/nn/flop_count.py, jit_handles.py).
EXTRA_RULES = {
    "batch_norm": ("batch norm", "fvcore counts 2 per element, 1 without affine"),
    "upsample_nearest2d": ("upsample nearest", "fvcore counts 1 per output element"),
    "upsample_bilinear2d": ("upsample bilinear", "fvcore counts 4 per output element"),
    "adaptive_avg_pool2d": ("adaptive avg pool", "fvcore counts 1 per input element"),
    "group_norm": ("group norm", "fvcore counts 2 per element"),
    "layer_norm": ("layer norm", "fvcore counts 2 per element"),
    "instance_norm": ("instance norm", "fvcore counts 1 per element"),
}
# Ops fvcore has no handler for (it counts them as 0), with why they matter here.
SKIPPED_RULES = {
    "aten::_convolution_mode": ("padding='same' conv", "fvcore has no handler for "
                                "aten::_convolution_mode and counts 0"),
}
# Cause label -> the rule behind it, for the footer.
RULES = {label: rule for label, rule in [*EXTRA_RULES.values(), *SKIPPED_RULES.values()]}

CONVENTION = (
    "cnnscope MACs / FLOPs: its own convention (MACs: multiply-accumulates, biases excluded; "
    "FLOPs: 2 x MACs + bias adds + elementwise work). fvcore: FlopCountAnalysis's count, "
    "1 per multiply-add of conv/linear/matmul (its 'flops' are multiply-adds, so they "
    "compare with MACs, not FLOPs) plus its own rules for batch norm, upsampling and "
    "adaptive pooling; ops it has no handler for count 0. difference = fvcore - cnnscope "
    "MACs. Biases: neither counts them as multiply-adds (fvcore's conv and linear "
    "handlers ignore them; cnnscope adds them to FLOPs only), so a bias never makes a "
    "difference. Ops a module runs in its own forward (an add, a matmul) are one row, "
    "'NAME (own ops)'; a module called twice is one row in fvcore."
)


@dataclass(frozen=True)
class CheckRow:
    """One layer (or one module's own ops) counted both ways."""

    name: str
    type: str
    macs: int  # cnnscope
    flops: int  # cnnscope
    fvcore_ops: tuple[tuple[str, int], ...] = ()  # fvcore's counts by operator
    skipped: tuple[tuple[str, int], ...] = ()  # ops fvcore has no handler for (count 0)

    @property
    def fvcore(self) -> int:
        return sum(n for _, n in self.fvcore_ops)

    @property
    def fvcore_macs(self) -> int:
        macs = _mac_operators()
        return sum(n for op, n in self.fvcore_ops if op in macs)

    @property
    def difference(self) -> int:
        return self.fvcore - self.macs

    @property
    def causes(self) -> list[tuple[str, int]]:
        """(cause, its part of the difference); the parts add up to ``difference``."""
        macs = _mac_operators()
        out = [(EXTRA_RULES.get(op, (op, "fvcore's own rule"))[0], n)
               for op, n in self.fvcore_ops if op not in macs and n]
        gap = self.fvcore_macs - self.macs
        if gap:
            known = [SKIPPED_RULES[op][0] for op, _ in self.skipped if op in SKIPPED_RULES]
            if known:
                out.append((known[0], gap))
            elif self.skipped:
                out.append(("fvcore skips " + ", ".join(op for op, _ in self.skipped), gap))
            else:
                out.append(("multiply-adds differ (cause unknown)", gap))
        return out

    @property
    def cause(self) -> str:
        """The causes as text; each with its share when there are several."""
        causes = self.causes
        if len(causes) == 1:
            return causes[0][0]
        return "; ".join(f"{text} {n:+,}" for text, n in causes)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "cnnscope_macs": self.macs,
                "cnnscope_flops": self.flops, "fvcore": self.fvcore,
                "fvcore_macs": self.fvcore_macs, "difference": self.difference,
                "cause": self.cause, "fvcore_by_operator": dict(self.fvcore_ops),
                "fvcore_skipped_ops": dict(self.skipped)}


@dataclass(frozen=True)
class FvcoreCheck(Shown):
    """Both counts of one model: rows, totals, and the difference by cause."""

    model: str
    input_size: tuple[int, ...]
    batch: int
    rows: tuple[CheckRow, ...]
    params: int  # cnnscope
    fvcore_params: int
    macs: int  # cnnscope totals
    flops: int
    output_shapes: tuple[tuple[int, ...], ...] = ()
    notes: tuple[str, ...] = field(default=())
    convention: str = CONVENTION

    @property
    def fvcore(self) -> int:
        return sum(r.fvcore for r in self.rows)

    @property
    def fvcore_macs(self) -> int:
        return sum(r.fvcore_macs for r in self.rows)

    @property
    def difference(self) -> int:
        return self.fvcore - self.macs

    def by_cause(self) -> dict[str, int]:
        """The difference split by cause (sums to ``difference``)."""
        totals: Counter = Counter()
        for r in self.rows:
            for text, n in r.causes:
                totals[text] += n
        return dict(totals)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "input_size": list(self.input_size), "batch": self.batch,
            "counter": "fvcore", "convention": self.convention,
            "totals": {"params": self.fvcore_params, "cnnscope_params": self.params,
                       "macs": self.fvcore_macs, "fvcore": self.fvcore,
                       "cnnscope_macs": self.macs, "cnnscope_flops": self.flops,
                       "difference": self.difference},
            "difference_by_cause": self.by_cause(),
            "output_shapes": [list(s) for s in self.output_shapes],
            "notes": list(self.notes),
            "layers": [r.to_dict() for r in self.rows],
        }


def _owner(name: str, kind: str) -> str:
    """The module whose own forward ran a record: itself for a module call, its parent
    for an op called in a forward ("layer1.0.add" -> "layer1.0", "add" -> "")."""
    base = name.split("#")[0]
    if kind == "module":
        return base
    return base.rsplit(".", 1)[0] if "." in base else ""


def fvcore_check(report: ModelReport, counts, depth: int = 0) -> FvcoreCheck:
    """Pair ``report``'s rows with fvcore's per-module ``counts``; ``depth`` > 0 groups
    rows by module prefix, as ``--depth`` does."""
    types = dict(report.module_types)
    groups: dict[str, dict[str, Any]] = {}
    claimed: set[str] = set()
    for r in report.table_layers():
        owner = _owner(r.name, r.kind)
        if r.kind == "module":
            key = owner
        else:
            key = f"{owner} (own ops)" if owner else "(model's own ops)"
        g = groups.setdefault(key, {"type": r.type if r.kind == "module" else
                                    types.get(owner, "forward"),
                                    "macs": 0, "flops": 0, "owner": owner})
        g["macs"] += r.macs
        g["flops"] += r.flops
    rows = []
    for key, g in groups.items():
        owner = g["owner"]
        ops = counts.own.get(owner, {}) if owner not in claimed else {}
        skipped = counts.skipped.get(owner, {}) if owner not in claimed else {}
        claimed.add(owner)
        rows.append([key, g["type"], g["macs"], g["flops"], Counter(ops), Counter(skipped)])
    for owner in counts.order:  # fvcore counts in a module no cnnscope row names
        if owner not in claimed and (counts.own.get(owner) or counts.skipped.get(owner)):
            rows.append([owner or "(model's own ops)", types.get(owner, "module"), 0, 0,
                         Counter(counts.own.get(owner, {})), Counter(counts.skipped.get(owner, {}))])
    if depth:
        merged: dict[str, list] = {}
        for row in rows:
            key = ".".join(row[0].split(" ")[0].split(".")[:depth])
            if key.startswith("("):
                key = row[0]
            if key not in merged:
                merged[key] = [key, types.get(key, row[1]) if key != row[0] else row[1],
                               0, 0, Counter(), Counter()]
            m = merged[key]
            m[2] += row[2]
            m[3] += row[3]
            m[4].update(row[4])
            m[5].update(row[5])
        rows = list(merged.values())
    return FvcoreCheck(
        model=report.model, input_size=tuple(report.input_size), batch=report.batch,
        rows=tuple(CheckRow(name, typ, macs, flops, tuple(sorted(ops.items())),
                            tuple(sorted(skipped.items())))
                   for name, typ, macs, flops, ops, skipped in rows),
        params=report.totals.params, fvcore_params=counts.params,
        macs=report.totals.macs, flops=report.totals.flops,
        output_shapes=report.output_shapes,
    )
