"""Renderers of ``--counter fvcore`` (``analysis.fvcore_check.FvcoreCheck``): cnnscope's
MACs and FLOPs beside fvcore's count, per layer, with the difference and its cause."""

from __future__ import annotations

import csv
import io

from cnnscope.report.io import strict_json
from cnnscope.report.units import human, shape, thousands

CSV_COLUMNS = ("name", "type", "cnnscope_macs", "cnnscope_flops", "fvcore", "fvcore_macs",
               "difference", "cause")


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


def render_rich(check, console, wide: bool = False) -> None:
    """The side-by-side table, fitted to the console (``wide``: every column, whole)."""
    from cnnscope.report.boxtable import SECTION, Column, print_footer, print_table

    columns = [Column("layer", shorten=20), Column("type", shorten=11, drop=1),
               Column("cnnscope MACs", right=True), Column("cnnscope FLOPs", right=True, drop=2),
               Column("fvcore", right=True), Column("difference", right=True),
               Column("cause", fold=True)]
    rows: list = []
    for r in check.rows:
        diff = (_signed(r.difference), "yellow") if r.difference else "0"
        rows.append([r.name, r.type, thousands(r.macs), thousands(r.flops),
                     thousands(r.fvcore), diff, r.cause])
    rows.append(SECTION)
    rows.append([("total", "bold"), "", (thousands(check.macs), "bold"),
                 (thousands(check.flops), "bold"), (thousands(check.fvcore), "bold"),
                 (_signed(check.difference), "bold"), ""])
    fitted = print_table(console, columns, rows, title=title(check), wide=wide)
    print_footer(console, fitted + footer_lines(check))


def to_csv(check) -> str:
    """One row per layer, exact integers (cnnscope's MACs and FLOPs, fvcore's count)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in check.rows:
        d = r.to_dict()
        w.writerow([d[k] for k in CSV_COLUMNS])
    return buf.getvalue()


def to_json(check) -> str:
    return strict_json(check.to_dict(), indent=2) + "\n"


def to_markdown(check) -> str:
    out = [f"## {title(check)}", "",
           "| layer | type | cnnscope MACs | cnnscope FLOPs | fvcore | difference | cause |",
           "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in check.rows:
        out.append(f"| {r.name} | {r.type} | {thousands(r.macs)} | {thousands(r.flops)} | "
                   f"{thousands(r.fvcore)} | {_signed(r.difference)} | {r.cause} |")
    out.append(f"| **total** | | **{thousands(check.macs)}** | **{thousands(check.flops)}** | "
               f"**{thousands(check.fvcore)}** | **{_signed(check.difference)}** | |")
    out.append("")
    out.extend(f"- {line.strip()}" for line in footer_lines(check))
    return "\n".join(out) + "\n"
