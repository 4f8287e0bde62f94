"""What ``--counter fvcore`` shows (``analysis.fvcore_check.FvcoreCheck``): cnnscope's
MACs and FLOPs beside fvcore's count, per layer, with the difference and its cause."""

from __future__ import annotations

import cnnscope.results as results
from cnnscope.analysis.fvcore_check import FvcoreCheck
from cnnscope.report.document import Column, Document, Row, Section, cell, row
from cnnscope.units import human, shape, thousands


BRIEF = ("fvcore counts multiply-adds (its 'flops') plus its own rules; difference = "
         "fvcore - cnnscope MACs (--explain: in full)")


def title(check) -> str:
    return (f"{check.model}  input {check.batch}x{shape(check.input_size)}  "
            "cnnscope vs fvcore (FlopCountAnalysis)")


def _signed(n: int) -> str:
    return f"{n:+,}" if n else "0"


def footer_lines(check) -> list[str]:
    other = check.fvcore - check.fvcore_macs
    lines = [
        f"cnnscope: MACs {thousands(check.macs)} ({human(check.macs, 'MAC')}), "
        f"FLOPs {thousands(check.flops)} ({human(check.flops, 'FLOP')}), "
        f"params {thousands(check.params)}",
        f"fvcore: {thousands(check.fvcore)} = {thousands(check.fvcore_macs)} multiply-adds "
        f"+ {thousands(other)} from its other rules, params {thousands(check.fvcore_params)}",
        "fvcore counts multiply-adds (its 'flops'), not FLOPs: set its column beside MACs; "
        "cnnscope FLOPs are 2 x MACs + bias adds + elementwise work.",
        f"difference (fvcore - cnnscope MACs): {_signed(check.difference)}",
    ]
    from cnnscope.analysis.fvcore_check import RULES

    lines += [f"  {text}: {n:+,}" + (f" ({RULES[text]})" if text in RULES else "")
              for text, n in check.by_cause().items()]
    lines += list(check.notes)
    lines.append("Convention: " + check.convention)
    return lines


@results.document.register(FvcoreCheck)
def document(check: FvcoreCheck) -> Document:
    """The side-by-side table with a totals row; CSV adds fvcore's multiply-adds alone."""
    columns = (Column("layer", csv="name", shorten=20), Column("type", csv="type", drop=1),
               Column("cnnscope MACs", csv="cnnscope_macs", right=True),
               Column("cnnscope FLOPs", csv="cnnscope_flops", right=True, drop=2),
               Column("fvcore", csv="fvcore", right=True),
               Column("fvcore MACs", csv="fvcore_macs", shown=False),
               Column("difference", csv="difference", right=True),
               Column("cause", csv="cause", fold=True))
    rows: list[Row] = []
    for r in check.rows:
        d = r.to_dict()
        rows.append(row(cell(r.name, d["name"]), cell(r.type, d["type"]),
                        cell(thousands(r.macs), d["cnnscope_macs"]),
                        cell(thousands(r.flops), d["cnnscope_flops"]),
                        cell(thousands(r.fvcore), d["fvcore"]), cell("", d["fvcore_macs"]),
                        cell(_signed(r.difference), d["difference"],
                             "yellow" if r.difference else None),
                        cell(r.cause, d["cause"])))
    rows.append(row(cell("total", style="bold"), "",
                    *(cell(text, style="bold") for text in (
                        thousands(check.macs), thousands(check.flops), thousands(check.fvcore))),
                    "", cell(_signed(check.difference), style="bold"), "", total=True))
    return Document(title(check), (Section(columns, tuple(rows)),), tuple(footer_lines(check)),
                    data=check.to_dict(), explained=("Convention: " + check.convention,),
                    brief=(BRIEF,))
