"""What ``cnnscope bench --ddp`` or ``--shard`` shows (a ``DdpResult``, a ``ShardedResult``)
as a ``Document``: the same interface as ``bench_render``, with the DDP columns; no torch.
Each is registered for its type; this module builds on ``bench_render``, never the reverse.

A DDP result has rows carrying ``DdpStats``: a table of the measurement (DDP step against
the single-process step, the exposed communication, the scaling efficiency) and a table
of the ring all-reduce prediction. A sharded result is an ordinary bench result plus a
line per rank saying where its rows ran.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cnnscope.results as results
from cnnscope.benchmark.comm_model import COMM_CONVENTION
from cnnscope.benchmark.records import BenchResult, BenchRow, DdpResult, ShardedResult
from cnnscope.report import bench_render as base
from cnnscope.report.document import Column, Document, Section, row
from cnnscope.units import bytes_h

DDP_CSV_COLUMNS = (
    "world_size", "backend", "bucket_cap_mb", "buckets", "trainable_params", "allreduce_bytes",
    "single_median_ms", "single_iqr_ms", "nosync_median_ms", "exposed_comm_ms",
    "scaling_efficiency", "allreduce_ms", "bus_gbps", "threads_per_rank", "rank_median_ms",
)
# Short headers so that the table fits 160 columns; the footer says what each one is.
MEASURE_HEAD = ("model", "batch", "dtype", "step ms", "IQR ms", "n",
                "single ms", "no_sync ms", "exposed ms", "allreduce ms", "eff.",
                "img/s", "grad bytes", "buckets", "status")
# On a narrow page (80 columns) these go first, the highest number first; the model,
# the DDP step, the exposed communication, the efficiency and the status always stay.
MEASURE_DROP = {"buckets": 7, "grad bytes": 6, "n": 5, "IQR ms": 4, "no_sync ms": 3,
                "allreduce ms": 2, "img/s": 1}
PREDICT_HEAD = ("model", "batch", "dtype", "ranks", "link Gbit/s", "ring ms",
                "step ms worst", "step ms best", "eff. worst", "eff. best")


def title(result: DdpResult) -> str:
    d = result.env.get("ddp") or {}
    return (f"cnnscope bench DDP: {d.get('world_size')} ranks, {d.get('backend')}, "
            f"{result.env.get('device_name', '?')}")


def measure_cells(r: BenchRow) -> list[str]:
    head = [r.model, str(r.batch), r.dtype]
    d = r.ddp
    if d is None or not r.ok:
        return head + ["-"] * 11 + [base.status_text(r)]
    return head + [
        base.ms(r.median_ms), base.ms(r.iqr_ms), str(r.samples),
        base.ms(d.single_median_ms), base.ms(d.nosync_median_ms), base.ms(d.exposed_comm_ms),
        base.ms(d.allreduce_ms), base.percent(d.scaling_efficiency), base.rate(r.throughput),
        bytes_h(d.allreduce_bytes), "-" if d.buckets is None else str(d.buckets),
        base.status_text(r),
    ]


def prediction_cells(r: BenchRow) -> list[list[str]]:
    if r.ddp is None:
        return []
    return [[r.model, str(r.batch), r.dtype, str(p.world_size), f"{p.link_gbps:.3g}",
             base.ms(p.allreduce_ms), base.ms(p.step_ms_no_overlap), base.ms(p.step_ms_full_overlap),
             base.percent(p.efficiency_no_overlap), base.percent(p.efficiency_full_overlap)]
            for p in r.ddp.predictions]


def footer_lines(result: BenchResult) -> list[str]:
    """The distributed lines (backend, buckets, ranks, convention), then bench's own."""
    return own_lines(result) + base.footer_lines(result)


def own_lines(result: BenchResult) -> list[str]:
    lines: list[str] = []
    d = result.env.get("ddp")
    if d:
        bucket = ("DDP default (first bucket 1 MiB, then 25 MiB)" if d.get("bucket_cap_mb") is None
                  else f"{d['bucket_cap_mb']:g} MiB")
        line = f"backend {d.get('backend')}, {d.get('world_size')} ranks, bucket size {bucket}"
        if d.get("threads_per_rank"):
            line += f", {d['threads_per_rank']} torch thread(s) per rank and in the single-process run"
        lines.append(line)
        cores = d.get("usable_cores")
        if isinstance(cores, int) and isinstance(d.get("world_size"), int) and d["world_size"] > cores:
            lines.append(f"! {d['world_size']} ranks share {cores} usable core(s): each rank waits "
                         "for the others' time slices, so step ms and eff. are this machine's, "
                         "not those of separate devices")
        lines.append("batch: per rank. step ms: the DDP step, the slowest rank's median (forward + loss + backward with the "
                     "gradient all-reduce + SGD step); single ms: one process, no DDP, same "
                     "per-rank batch; no_sync ms: the DDP step without the all-reduce; exposed ms "
                     "= DDP step - no_sync; allreduce ms: a lone all-reduce of the gradient "
                     "bytes (median); eff. = scaling efficiency, single / DDP step; img/s = ranks x batch / "
                     "DDP step. Prediction: worst = no overlap, best = all-reduce hidden behind "
                     "the single-process backward.")
        lines.append(COMM_CONVENTION)
    s = result.env.get("shard")
    if s:
        for part in s.get("ranks", ()):
            lines.append(f"rank {part['rank']}: {part.get('host')}, {part.get('device')} "
                         f"({part.get('device_name')}): {part['rows']} row(s)")
    return lines


# ----------------------------------------------------------------------------- document

PREDICT_TITLE = ("ring all-reduce prediction (weak scaling, same per-rank batch; worst: no "
                 "overlap, best: full overlap)")
PREDICT_LEAD = ("Ring all-reduce prediction (weak scaling, same per-rank batch; worst: no "
                "overlap, best: full overlap with the backward):")


@results.document.register(ShardedResult)
def sharded_document(result: ShardedResult, *, top: int = 0,
                     layers_csv: bool = False) -> Document:
    """A sharded sweep as a ``Document``: bench's document with the rank lines ending its
    footer; CSV bench's columns, then the DDP columns (empty: no row has DDP figures);
    JSON the exact data (env carries "shard")."""
    doc = base.document(dataclasses.replace(result, env=_plain_env(result.env)), top=top,
                        layers_csv=layers_csv, more=own_lines(result))
    return dataclasses.replace(doc, sections=(doc.sections[0], _exact(result, layers_csv)),
                               data=result.to_dict())


@results.document.register(DdpResult)
def document(result: DdpResult, *, top: int = 0, layers_csv: bool = False) -> Document:
    """A DDP sweep as a ``Document``: the measurement table, then a part with the
    prediction table (led in Markdown by a sentence) and the footer; CSV bench's columns,
    then the DDP columns (empty for a row without DDP figures); JSON the exact data (rows
    carry "ddp", env carries "ddp")."""
    exact = _exact(result, layers_csv)
    measure = tuple(Column(c, right=1 <= i <= 13 and c != "dtype", fold=c == "status",
                           drop=MEASURE_DROP.get(c, 0), code=c == "model")
                    for i, c in enumerate(MEASURE_HEAD))
    sections = (Section(measure, tuple(row(*measure_cells(r)) for r in result.rows)), exact)
    predictions = [cells for r in result.rows for cells in prediction_cells(r)]
    footer = tuple(footer_lines(result))
    if not predictions:
        return Document(title(result), sections, footer, data=result.to_dict(), heading=3)
    predict = tuple(Column(c, right=i not in (0, 2), code=i == 0)
                    for i, c in enumerate(PREDICT_HEAD))
    part = Document(PREDICT_TITLE, (Section(predict, tuple(row(*p) for p in predictions)),),
                    footer, heading=0, md_before=(PREDICT_LEAD,))
    return Document(title(result), sections, data=result.to_dict(),
                    heading=3, parts=(part,))


def _exact(result: BenchResult, layers_csv: bool) -> Section:
    """The CSV-only section: per-layer timings, or a line per row with the DDP columns."""
    return (base.layers_section(result) if layers_csv
            else base.rows_section(result, DDP_CSV_COLUMNS, _ddp_values))


def _plain_env(env: dict[str, Any]) -> dict[str, Any]:
    """``env`` without the shard entry: bench's own document for a sharded sweep."""
    return {k: v for k, v in env.items() if k != "shard"}


def _ddp_values(r: BenchRow) -> list[Any]:
    extra: dict[str, Any] = r.ddp.to_dict() if r.ddp else {}
    return [" ".join(str(x) for x in extra[c]) if c == "rank_median_ms" and c in extra
            else base.csv_value(extra.get(c)) for c in DDP_CSV_COLUMNS]
