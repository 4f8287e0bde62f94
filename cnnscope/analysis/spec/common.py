"""What every spec table shares: the table type, traced-record helpers, paper comparisons.

A spec table is text cells computed from traced records, with the paper's printed
figures beside them as reference data. A comparison never hides a difference: a
paper figure that does not follow from the traced layer sizes is flagged with the
arithmetic that shows why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from cnnscope.results import MatchStatus, Shown
from cnnscope.trace.records import LayerRecord, ModelReport

# A paper figure within this relative distance of the traced one, but further than the
# rounding of its last printed digit, is a "near" miss (a slip or a different rounding);
# beyond it, the figure does not follow from the layer sizes at all.
NEAR = 0.03

STATUS_OK = MatchStatus.OK
STATUS_NEAR = MatchStatus.NEAR
STATUS_DIFFERS = MatchStatus.DIFFERS


@dataclass(frozen=True)
class Flag:
    """One cell where the paper's printed value is not the traced one."""

    row: str  # row label, e.g. "inception (4c)"
    column: str  # e.g. "params"
    computed: str  # as shown in the table
    paper: str  # as printed in the paper
    status: MatchStatus  # NEAR or DIFFERS
    reason: str  # the arithmetic and the explanation

    def to_dict(self) -> dict[str, str]:
        return {"row": self.row, "column": self.column, "computed": self.computed,
                "paper": self.paper, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class SpecTable(Shown):
    """A paper table recomputed from traced models.

    ``rows`` are display cells (strings) under ``columns``; ``row_notes`` holds, per row,
    the explanation of that row's flags ("" when none). ``notes`` are printed under the
    table. ``data`` is the machine-readable side (exact integers) for JSON output.
    """

    key: str  # "googlenet"
    title: str
    source: str  # citation of the paper table the reference values come from
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    row_notes: tuple[str, ...]
    notes: tuple[str, ...] = ()
    flags: tuple[Flag, ...] = ()
    models: tuple[str, ...] = ()  # zoo models traced for this table
    data: dict[str, Any] = field(default_factory=dict, compare=False)

    def column(self, name: str) -> list[str]:
        """Every cell of one column, top to bottom."""
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def row(self, label: str, *, nth: int = 0) -> dict[str, str]:
        """The ``nth`` row whose first cell is ``label``, as {column: cell}."""
        found = [r for r in self.rows if r[0] == label]
        if len(found) <= nth:
            raise KeyError(f"{self.key}: no row {label!r} (#{nth})")
        return dict(zip(self.columns, found[nth]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "source": self.source,
            "models": list(self.models),
            "columns": list(self.columns),
            "rows": [dict(zip(self.columns, r), note=n) for r, n in zip(self.rows, self.row_notes)],
            "flags": [f.to_dict() for f in self.flags],
            "notes": list(self.notes),
            "data": self.data,
        }


@dataclass(frozen=True)
class SpecTables(Shown):
    """Several spec tables shown together (``cnnscope spec --all``)."""

    tables: tuple[SpecTable, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"tables": [t.to_dict() for t in self.tables]}


# --- tracing ---------------------------------------------------------------------------

# A zoo model name -> its meta-device trace at the default input. Each table's ``build``
# takes one (``cnnscope.api.traced_zoo_model``, memoised per process), so the tables work
# on records and never trace by themselves; its ``info(name)`` gives the model's registry
# entry (reference figures, family), so they never read the zoo either.
Tracer = Callable[[str], ModelReport]


def visible(report: ModelReport) -> list[LayerRecord]:
    return [r for r in report.layers if r.kind != "shape"]


def under(report: ModelReport, prefix: str) -> list[LayerRecord]:
    """Records of the module ``prefix`` and everything inside it, in call order."""
    return [r for r in visible(report)
            if r.name.split("#")[0] == prefix or r.name.startswith(prefix + ".")]


def is_conv(r: LayerRecord) -> bool:
    return r.type.startswith("Conv") and r.kind == "module" and r.kernel_size is not None


def is_linear(r: LayerRecord) -> bool:
    return r.type == "Linear"


def is_pool(r: LayerRecord) -> bool:
    return "Pool" in r.type


def in_channels(r: LayerRecord) -> int:
    return r.input_shapes[0][1]


def out_channels(r: LayerRecord) -> int:
    return r.output_shape[1]


def weight_count(r: LayerRecord) -> int:
    """Weights of a convolution or linear layer, biases excluded.

    Read from the traced geometry: out * in / groups * prod(kernel) for a convolution,
    in * out for a linear layer; 0 for anything else.
    """
    if is_conv(r):
        return out_channels(r) * (in_channels(r) // (r.groups or 1)) * math.prod(r.kernel_size)
    if is_linear(r):
        return r.input_shapes[0][-1] * r.output_shape[-1]
    return 0


def weight_formula(r: LayerRecord) -> str:
    """'7x7x3x64' for a convolution (k x k x C_in/groups x C_out), '1024x1000' for linear."""
    if is_conv(r):
        k = "x".join(map(str, r.kernel_size))
        return f"{k}x{in_channels(r) // (r.groups or 1)}x{out_channels(r)}"
    if is_linear(r):
        return f"{r.input_shapes[0][-1]}x{r.output_shape[-1]}"
    return ""


def hw(shape: Sequence[int]) -> str:
    """(1, 64, 112, 112) -> '112x112'; a flat (1, C) output is '1x1'."""
    return "x".join(map(str, shape[2:])) if len(shape) > 2 else "1x1"


def hwc(shape: Sequence[int]) -> str:
    """(1, 64, 112, 112) -> '112x112x64' (the papers' H x W x C); (1, 1000) -> '1x1x1000'."""
    return f"{hw(shape)}x{shape[1]}"


def kernel_text(r: LayerRecord) -> str:
    """'7x7' from the record's kernel size."""
    return "x".join(map(str, r.kernel_size or ()))


def stride_text(r: LayerRecord) -> str:
    """'2' for a square stride of 2, '2x1' otherwise."""
    s = r.stride or (1,)
    return str(s[0]) if len(set(s)) == 1 else "x".join(map(str, s))


def longest_weight_path(records: Sequence[LayerRecord]) -> int:
    """Depth in the papers' sense: weight layers on the longest path through ``records``.

    Follows the dataflow edges (``inputs``) between the given records; a record fed from
    outside them starts a path. Convolutions and linear layers count one each.
    """
    depth: dict[int, int] = {}
    for r in records:  # records are in call order, so producers come first
        before = max((depth[i] for i in r.inputs if i in depth), default=0)
        depth[r.index] = before + (1 if (is_conv(r) or is_linear(r)) else 0)
    return max(depth.values(), default=0)


# --- comparing with the paper ---------------------------------------------------------

def printed_unit(printed: str) -> float:
    """The unit of the last printed digit: '2.7' -> 0.1, '159' -> 1."""
    return 10.0 ** -len(printed.split(".")[1]) if "." in printed else 1.0


def compare(computed: float, printed: str) -> str:
    """STATUS_OK when ``printed`` is ``computed`` rounded to the printed digit (ties either
    way), STATUS_NEAR within NEAR relative distance, else STATUS_DIFFERS."""
    paper = float(printed)
    diff = abs(computed - paper)
    if diff <= printed_unit(printed) / 2 + 1e-9:
        return STATUS_OK
    if diff <= NEAR * max(abs(computed), abs(paper)):
        return STATUS_NEAR
    return STATUS_DIFFERS


def check_cell(flags: Iterable[Flag], note_no: int | None) -> str:
    """The 'check' column: 'ok', or which columns differ and the note number."""
    flags = list(flags)
    if not flags:
        return STATUS_OK
    worst = STATUS_DIFFERS if any(f.status == STATUS_DIFFERS for f in flags) else STATUS_NEAR
    cols = ", ".join(dict.fromkeys(f.column for f in flags))
    return f"{worst}: {cols} [{note_no}]"


def thousands(n: int) -> str:
    return f"{n:,}"
