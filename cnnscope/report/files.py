"""Report files (``cnnscope report``) and the drift document of ``cnnscope check``.

``write_report`` writes, per model, the layer table (``<model>.layers.csv``), the totals (``<model>.totals.json``) and a Markdown summary (``<model>.md``), and
for two or more models the comparison (``compare.csv``, ``compare.json``, ``compare.md``).
Each file is written atomically (a temp file, then a rename), so an interrupted run
leaves whole files or none, never a half-written one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import cnnscope.results as results
from cnnscope.analysis.compare import Comparison, ModelSummary
from cnnscope.analysis.snapshot import CheckResult
from cnnscope.errors import UserFileError
from cnnscope.fileio import strict_json, write_text_atomic
from cnnscope.report import compare_render
from cnnscope.report.document import Column, Document, Section, cell, row, to_markdown
from cnnscope.trace.records import ModelReport
from cnnscope.units import bytes_h, human, shape, thousands

# ---------------------------------------------------------------------- report files


def file_stem(name: str) -> str:
    """A file-name-safe stem: "examples/net.py:build" -> "examples_net.py_build"."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "model"
    return stem


def totals_json(report: ModelReport, summary: ModelSummary) -> str:
    """The report's metadata and totals (no layer list) plus the derived figures."""
    data = report.to_dict()
    data.pop("layers")
    derived = summary.to_dict()
    for key in ("dtype", "param_bytes", "depth", "receptive_field", "peak_activation_bytes",
                "peak_activation_elements", "peak_activation_layer"):
        data[key] = derived[key]
    return strict_json(data, indent=2) + "\n"


def summary_document(report: ModelReport, summary: ModelSummary, rows: Sequence,
                     files: dict[str, str]) -> Document:
    """A model's page (``<model>.md``): a level-1 title, the headline figures as a list,
    then the layer table at the given grouping (a part)."""
    t = report.totals
    lines = (
        f"input: {report.batch}x{shape(report.input_size)}",
        f"params: {thousands(t.params)} ({human(t.params)}; {bytes_h(summary.param_bytes)} "
        f"at {summary.dtype})",
        f"MACs: {thousands(t.macs)} ({human(t.macs, 'MAC')})",
        f"FLOPs: {thousands(t.flops)} ({human(t.flops, 'FLOP')})",
        f"depth (weighted layers on the deepest path): {summary.depth}",
        f"receptive field of the last feature map: "
        f"{compare_render.format_rf(summary.receptive_field)}",
        f"peak activation memory ({summary.dtype}, one inference pass): "
        f"{bytes_h(summary.peak.bytes)} at {summary.peak.layer}",
        f"output: {', '.join(shape(s) for s in report.output_shapes)}",
        "files: " + ", ".join(f"[{v}]({v})" for v in files.values()),
    )
    return Document(report.model, (), lines, heading=1,
                    parts=(results.document(report, rows=rows),))


def write_report(folder: str | Path, reports: Sequence[ModelReport], comparison: Comparison,
                 grouped_rows: Sequence[Sequence], *, plot: bool = False) -> list[Path]:
    """Write every report file into ``folder`` (created if missing); return the paths."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise UserFileError(f"{str(folder)!r} is a file", "report -o takes a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserFileError(f"cannot create folder {str(folder)!r}: {exc.strerror}") from None
    written: list[Path] = []
    stems: dict[str, int] = {}
    for report, summary, rows in zip(reports, comparison.models, grouped_rows):
        stem = file_stem(summary.model)
        stems[stem] = stems.get(stem, 0) + 1
        if stems[stem] > 1:
            stem = f"{stem}_{stems[stem]}"
        files = {"layers": f"{stem}.layers.csv", "totals": f"{stem}.totals.json",
                 "summary": f"{stem}.md"}
        written.append(write_text_atomic(out / files["layers"], results.render(report, "csv")))
        written.append(write_text_atomic(out / files["totals"], totals_json(report, summary)))
        written.append(write_text_atomic(out / files["summary"],
                                         to_markdown(summary_document(report, summary, rows,
                                                                      files))))
    if len(reports) > 1:
        for format in ("csv", "json", "md"):
            written.append(write_text_atomic(out / f"compare.{format}",
                                             results.render(comparison, format)))
        if plot:
            from cnnscope.report.plot import plot_comparison

            written.append(plot_comparison(comparison, str(out / "compare.png")))
    return written


# ---------------------------------------------------------------------- check's drift table

DRIFT_COLUMNS = ("model", "field", "old", "new", "delta")
MAX_LAYER_ROWS = 20  # per model in the table; CSV and JSON list every row


def _cell(v: Any) -> str:
    return thousands(v) if isinstance(v, int) and not isinstance(v, bool) else str(v)


def _delta(d) -> str:
    if d.delta is None:
        return "-"
    r = d.relative
    rel = "" if r is None else (f" ({r:+.2%})" if abs(r) >= 1e-4 or r == 0
                                else f" ({'+' if r > 0 else '-'}<0.01%)")
    return f"{d.delta:+,}{rel}"


def drift_rows(result, limit: int | None = MAX_LAYER_ROWS) -> list[tuple[str, ...]]:
    """Text rows (model, field, old, new, delta); per-layer rows capped at ``limit``."""
    rows: list[tuple[str, ...]] = []
    layer_rows: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for d in result.drifts:
        if d.field.startswith("layer ") and limit is not None:
            layer_rows[d.model] = layer_rows.get(d.model, 0) + 1
            if layer_rows[d.model] > limit:
                hidden[d.model] = hidden.get(d.model, 0) + 1
                continue
        rows.append((d.model, d.field, _cell(d.old), _cell(d.new), _delta(d)))
    for model, n in hidden.items():
        rows.append((model, f"... {n} more layers changed", "", "", "(see --format csv)"))
    return rows


def check_summary(result) -> str:
    n = len(result.checked)
    if result.ok:
        return f"OK: {n} model{'s' if n != 1 else ''} match {result.path}"
    models = len({d.model for d in result.drifts})
    return (f"DRIFT: {models} of {n} model{'s' if n != 1 else ''} changed since {result.path} "
            f"({len(result.drifts)} differences); if intended, regenerate it with cnnscope snapshot")


@results.document.register(CheckResult)
def drift_document(result: CheckResult) -> Document:
    """What ``cnnscope check`` found: the drifts (per-layer ones capped at
    ``MAX_LAYER_ROWS`` a model in the table and Markdown; CSV and JSON list every one,
    exact), then the notes and the verdict. Nothing drifted: the verdict alone."""
    sections = []
    if not result.ok:
        # The model is what a user types and the figures are numbers: neither is ever cut;
        # the field (prose) folds at spaces. In a table the relative change is a column of
        # its own, the first to go on a narrow page; Markdown keeps it beside the delta.
        columns = tuple(Column(c, right=c in ("old", "new", "delta"), fold=c == "field")
                        for c in DRIFT_COLUMNS)
        rows = drift_rows(result)
        title = f"changes against {result.path}"
        sections.append(Section((*columns, Column("relative", right=True, drop=1)),
                                tuple(row(*r[:4], *_split_delta(r[4])) for r in rows),
                                title=title, formats=("table",)))
        sections.append(Section(columns, tuple(row(*r) for r in rows), title=title,
                                formats=("md",)))
    fields = ("model", "field", "old", "new", "delta", "relative")
    sections.append(Section(tuple(Column(f, csv=f, shown=False) for f in fields),
                            tuple(row(*(cell("", _exact(d.to_dict()[f])) for f in fields))
                                  for d in result.drifts)))
    return Document(f"cnnscope check {result.path}", tuple(sections),
                    footer=(*result.notes, check_summary(result)), data=result.to_dict())


def _split_delta(text: str) -> tuple[str, str]:
    """"-1,000 (-75.34%)" -> ("-1,000", "-75.34%")."""
    number, sep, rest = text.partition(" (")
    return (number, rest[:-1]) if sep and rest.endswith(")") else (text, "")


def _exact(v: Any) -> Any:
    """A CSV cell: an exact number, a missing one empty."""
    return "" if v is None else v


# ---------------------------------------------------------------------- check --format github

MAX_ANNOTATION_DRIFTS = 20  # per model in one annotation; the rest is counted


def _github_data(text: str) -> str:
    """A workflow command's message: GitHub's escaping of ``%``, CR and LF."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    """A workflow command's property value (file, title): the message escaping plus
    ``:`` and ``,``, which would end the value."""
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(result: CheckResult) -> str:
    """``check --format github``: one ``::error`` workflow command per drifted model (its
    differences one a line, at most ``MAX_ANNOTATION_DRIFTS``), GitHub's escaping applied;
    a ``::notice`` when everything matches. Free text is made printable first, so a lock
    cannot smuggle another workflow command into the log."""
    from cnnscope.printable import printable

    where = _github_property(printable(result.path))
    if result.ok:
        return (f"::notice file={where},title={_github_property('cnnscope check')}::"
                f"{_github_data(printable(check_summary(result)))}\n")
    by_model: dict[str, list] = {}
    for d in result.drifts:
        by_model.setdefault(d.model, []).append(d)
    out = []
    for model, drifts in by_model.items():
        lines = [f"{d.field}: {_cell(d.old)} -> {_cell(d.new)}" + (
            f" ({_delta(d)})" if d.delta is not None else "") for d in drifts[:MAX_ANNOTATION_DRIFTS]]
        if len(drifts) > MAX_ANNOTATION_DRIFTS:
            lines.append(f"... {len(drifts) - MAX_ANNOTATION_DRIFTS} more (cnnscope check "
                         f"{result.path} --format csv)")
        lines.append("if intended, regenerate the lock with cnnscope snapshot")
        title = f"cnnscope check: {model} drifted ({len(drifts)} difference"
        title += "s)" if len(drifts) != 1 else ")"
        message = "\n".join(printable(line) for line in lines)
        out.append(f"::error file={where},title={_github_property(printable(title))}::"
                   f"{_github_data(message)}")
    return "\n".join(out) + "\n"
