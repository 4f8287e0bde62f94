"""The four renderers of a ``Document`` (table, CSV, JSON, Markdown), on a hand-written
document whose expected output is written out here; and the result protocol: every result
type the API returns is a frozen dataclass with ``to_dict()`` that renders in all four."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from rich.console import Console

from cnnscope.report.document import (
    SECTION_RULE,
    Column,
    Document,
    Section,
    cell,
    render_table,
    render_text,
    row,
)

COLUMNS = (
    Column("layer", csv="name", shorten=12),
    Column("MACs", csv="macs", right=True),
    Column("exact only", csv="bytes", shown=False),
    Column("note", fold=True, drop=1),
)

DOC = Document(
    title="tiny  input 1x3x8x8",
    sections=(Section(COLUMNS, (
        row("conv1", cell("1,234", 1234), cell("", 4096), "k3"),
        SECTION_RULE,
        row("fc", cell("10", 10), cell("", 40), ""),
        row(cell("total", style="bold"), cell("1,244", style="bold"), "", "", total=True),
    )),),
    footer=("  indented line", "Convention: MACs are multiply-adds."),
    data={"model": "tiny", "macs": 1244, "layers": [{"name": "conv1"}, {"name": "fc"}]},
)


def test_csv_has_the_csv_columns_exact_values_and_no_totals():
    assert render_text(DOC, "csv") == ("name,macs,bytes\n"
                                       "conv1,1234,4096\n"
                                       "fc,10,40\n")


def test_csv_order_puts_the_columns_in_file_order():
    section = dataclasses.replace(DOC.sections[0], csv_order=("bytes", "name", "macs"))
    doc = dataclasses.replace(DOC, sections=(section,))
    assert render_text(doc, "csv").splitlines() == ["bytes,name,macs", "4096,conv1,1234",
                                                    "40,fc,10"]


def test_markdown_shows_the_shown_columns_totals_bold_and_the_footer():
    assert render_text(DOC, "md") == (
        "## tiny  input 1x3x8x8\n"
        "\n"
        "| layer | MACs | note |\n"
        "| --- | ---: | --- |\n"
        "| conv1 | 1,234 | k3 |\n"
        "| fc | 10 |  |\n"
        "| **total** | **1,244** | |\n"
        "\n"
        "- indented line\n"
        "- Convention: MACs are multiply-adds.\n")


def test_markdown_escapes_bars_and_adds_the_paragraphs_before_and_after():
    doc = Document("t", (Section((Column("a|b"),), (row("x | y"),)),), footer=("n",),
                   md_before=("Source: p. 3.",), md_after=("Generated.",))
    assert render_text(doc, "md") == ("## t\n\nSource: p. 3.\n\n| a\\|b |\n| --- |\n"
                                      "| x \\| y |\n\n- n\n\nGenerated.\n")
    bare = dataclasses.replace(doc, footer=())
    assert render_text(bare, "md").endswith("| x \\| y |\n\nGenerated.\n")


PART = Document("part b", (Section((Column("name", csv="name", code=True),
                                    Column("n", csv="n", right=True)),
                                   (row("x|y", cell("2", 2)),)),),
                footer=("b's note",), key="b", heading=3)


def test_parts_follow_the_document_in_every_format():
    doc = dataclasses.replace(DOC, parts=(PART,))
    # CSV: the document's own, then each part's after a blank line and its "# key" line
    assert render_text(doc, "csv") == ("name,macs,bytes\nconv1,1234,4096\nfc,10,40\n"
                                       "\n# b\nname,n\nx|y,2\n")
    # Markdown: a blank line between; the part's title at its level; names in backticks
    assert render_text(doc, "md").endswith(
        "- Convention: MACs are multiply-adds.\n"
        "\n"
        "### part b\n"
        "\n"
        "| name | n |\n"
        "| --- | ---: |\n"
        "| `x\\|y` | 2 |\n"
        "\n"
        "- b's note\n")
    # JSON: the document's data alone
    assert json.loads(render_text(doc, "json")) == DOC.data
    con = _plain_console(60)
    render_table(doc, con)
    text = con.file.getvalue()
    assert text.index("Convention: MACs") < text.index("part b") < text.index("x|y") \
        < text.index("b's note")


def test_a_document_of_parts_alone_prints_only_its_parts():
    doc = Document("all", (), data={"x": 1}, heading=0, parts=(PART, PART))
    assert render_text(doc, "csv") == "# b\nname,n\nx|y,2\n\n# b\nname,n\nx|y,2\n"
    assert render_text(doc, "md").startswith("### part b\n\n| name | n |")
    assert render_text(doc, "md").count("### part b\n") == 2


def test_a_rich_table_keeps_nowrap_cells_on_one_line_and_colours_styled_ones():
    columns = (Column("name", fold=True, min_width=6), Column("figure", right=True, nowrap=True))
    doc = Document("t", (Section(columns, (row("a [b] c d e f g", "123,456,789"),
                                           row("x", cell("bad", style="red"))),
                                 layout="rich"),))
    con = _plain_console(24)
    render_table(doc, con)
    lines = con.file.getvalue().splitlines()
    assert any("123,456,789" in line for line in lines)  # the number whole on one line
    assert "[b]" in "".join(lines)  # brackets are text, not markup
    colour = Console(file=io.StringIO(), width=40, force_terminal=True, color_system="standard")
    render_table(doc, colour)
    assert "\x1b[31mbad" in colour.file.getvalue()


def test_json_is_the_data_strict_and_compact_lists_one_item_a_line():
    assert json.loads(render_text(DOC, "json")) == DOC.data
    compact = dataclasses.replace(DOC, compact=("layers",))
    assert render_text(compact, "json") == (
        '{\n  "model": "tiny",\n  "macs": 1244,\n  "layers": [\n'
        '    {"name": "conv1"},\n    {"name": "fc"}\n  ]\n}\n')
    assert render_text(dataclasses.replace(compact, data={"layers": []}), "json") == \
        '{\n  "layers": []\n}\n'
    # strict JSON: a NaN (a figure that could not be measured) is null, never NaN
    assert render_text(dataclasses.replace(DOC, data={"x": float("nan")}), "json") == \
        '{\n  "x": null\n}\n'


def _plain_console(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)


def test_table_piped_is_plain_aligned_text_with_a_blank_line_per_rule():
    con = _plain_console(80)
    render_table(DOC, con)
    assert con.file.getvalue() == (
        "tiny  input 1x3x8x8\n"
        "layer   MACs  note\n"
        "-----  -----  ----\n"
        "conv1  1,234  k3\n"
        "\n"
        "fc        10\n"
        "\n"
        "total  1,244\n"
        "  indented line\n"
        "Convention: MACs are multiply-adds.\n")


def test_table_fitted_to_a_narrow_page_drops_and_says_so():
    # layer, MACs and note are 5 + 5 + 4 cells, 2 apart: 18 > 14
    con = _plain_console(14)
    render_table(DOC, con)
    text = con.file.getvalue()
    assert text.splitlines()[1].split() == ["layer", "MACs"]  # note dropped
    assert "left out to fit 14 columns: note (--wide shows all)" in " ".join(text.split())
    con = _plain_console(14)
    render_table(DOC, con, wide=True)
    assert con.file.getvalue().splitlines()[1].split() == ["layer", "MACs", "note"]


def test_piped_section_is_plain_and_csv_only_section_is_not_shown():
    # One rule for every table: piped output is plain (the "box" layout of a small
    # summary table no longer boxes it when piped).
    boxed = Section((Column("what"), Column("bytes", right=True)),
                    (row("weights", "12"), row(cell("peak", style="bold"), "12", total=True)),
                    layout="box")
    long_form = Section((Column("name", csv="name", shown=False),
                         Column("bytes", csv="bytes", shown=False)),
                        (row("weights", cell("", 12)),))
    doc = Document("plan", (boxed, long_form), footer=("done",))
    con = _plain_console(40)
    render_table(doc, con)
    assert con.file.getvalue() == (
        "plan\n"
        "what     bytes\n"
        "-------  -----\n"
        "weights     12\n"
        "\n"
        "peak        12\n"
        "done\n")
    con = Console(width=40, file=io.StringIO(), color_system=None, force_terminal=True)
    render_table(doc, con)
    assert con.file.getvalue() == (
        "       plan        \n"  # 19 cells: Rich puts the odd space on the right
        "┏━━━━━━━━━┳━━━━━━━┓\n"
        "┃ what    ┃ bytes ┃\n"
        "┡━━━━━━━━━╇━━━━━━━┩\n"
        "│ weights │    12 │\n"
        "├─────────┼───────┤\n"
        "│ peak    │    12 │\n"
        "└─────────┴───────┘\n"
        "done\n")
    assert render_text(doc, "csv") == "name,bytes\nweights,12\n"
    assert render_text(doc, "md") == ("## plan\n\n| what | bytes |\n| --- | ---: |\n"
                                      "| weights | 12 |\n| **peak** | 12 |\n\n- done\n")


# ---------------------------------------------------------------------- the result protocol


@pytest.fixture(scope="module")
def results(zoo_report, tmp_path_factory):
    """One result of each type the API returns that renders through a Document."""
    from cnnscope.analysis.receptive_field import receptive_fields
    from cnnscope.analysis.shapes import output_sizes

    import cnnscope
    from cnnscope.analysis.snapshot import dump_lock
    from cnnscope.analysis.spec.common import SpecTables
    from cnnscope.api import check_lock, make_lock, plan_memory, spec_table, zoo_table
    from cnnscope.benchmark.records import BenchResult, BenchRow, LayerTiming, PerLayer

    report = zoo_report("lenet5")
    # A bench sweep as the runner builds it (timings made up: no sweep runs here), one
    # row timed per layer and one that ran out of memory.
    layer = LayerTiming(name="c1", type="Conv2d", macs=117_600, fwd_ms=0.5, flops=235_200,
                        bytes_moved=30_000)
    timed = BenchRow(model="lenet5", device="cpu", device_name="CPU", batch=1, dtype="fp32",
                     mode="infer", input_size=(1, 32, 32), samples=5, median_ms=1.0,
                     per_layer=PerLayer(layers=(layer,), sum_fwd_ms=0.5, hooked_fwd_ms=1.1,
                                        clean_fwd_ms=1.0, samples=5))
    oom = BenchRow(model="lenet5", device="cpu", device_name="CPU", batch=4096, dtype="fp32",
                   mode="infer", input_size=(1, 32, 32), status="oom", error="out of memory")
    sweep = BenchResult(env={"device": "cpu", "device_name": "CPU", "torch": "x"}, settings={},
                        rows=[timed, oom], planned=2)
    googlenet, resnet = spec_table("googlenet"), spec_table("resnet")
    lock = tmp_path_factory.mktemp("lock") / "lenet5.lock.json"
    lock.write_text(dump_lock(make_lock(["lenet5"], None, 1, {}, lock_folder=lock.parent)))
    return {
        "ModelReport": report,
        "ShapeReport": output_sizes(report),
        "ReceptiveFieldReport": receptive_fields(report),
        "MemoryPlan": plan_memory("lenet5"),
        "ZooTable": zoo_table("lenet*"),
        "CheckResult": check_lock(str(lock)),
        "Comparison": cnnscope.compare(["lenet5", "nin"]),
        "BenchResult": sweep,
        "SpecTable": googlenet,
        "SpecTables": SpecTables((googlenet, resnet)),
    }


@pytest.fixture(scope="module")
def zoo_report():
    import cnnscope

    return cnnscope.analyze


def test_every_document_type_is_covered():
    from cnnscope.report.render import load_all
    from cnnscope.results import document

    load_all()

    assert {t.__name__ for t in document.registry if t is not object} == {
        "ModelReport", "ShapeReport", "ReceptiveFieldReport", "MemoryPlan", "FvcoreCheck",
        "ZooTable", "CheckResult", "Comparison", "BenchResult", "DdpResult", "ShardedResult",
        "SpecTable", "SpecTables"}


@pytest.mark.parametrize("name", ["ModelReport", "ShapeReport", "ReceptiveFieldReport",
                                  "MemoryPlan", "ZooTable", "CheckResult", "Comparison",
                                  "BenchResult", "SpecTable", "SpecTables"])
def test_result_satisfies_the_protocol_and_renders_in_every_format(results, name):
    from cnnscope.report.render import document
    from cnnscope.results import Result

    result = results[name]
    assert type(result).__name__ == name
    assert dataclasses.is_dataclass(result) and type(result).__dataclass_params__.frozen
    assert isinstance(result, Result)
    json.dumps(result.to_dict(), allow_nan=False)  # exact data, strict JSON
    doc = document(result)
    assert isinstance(doc, Document)
    con = _plain_console(120)
    render_table(doc, con)
    assert con.file.getvalue().strip()
    csv_text = render_text(doc, "csv")
    header = next(line for line in csv_text.splitlines() if not line.startswith("# "))
    assert csv_text.count("\n") >= 1 and "," in header  # several tables: "# key" lines
    exact = json.loads(json.dumps(result.to_dict()))
    written = json.loads(render_text(doc, "json"))
    assert {k: written[k] for k in exact} == exact  # its data, perhaps with notes added
    md = render_text(doc, "md")
    titles = [part.title for part in doc.parts if part.heading] or [doc.title]
    if doc.heading:  # "## title" (bench: "### title")
        assert md.startswith(f"{'#' * doc.heading} {doc.title}\n")
    elif doc.parts:  # several tables: one section each
        assert all(f"## {title}\n" in md for title in titles)
    else:
        assert md.startswith("| ")


def test_fvcore_check_satisfies_the_protocol():
    pytest.importorskip("fvcore")
    from cnnscope.api import fvcore_check
    from cnnscope.report.render import document
    from cnnscope.results import Result

    check = fvcore_check("lenet5")
    assert isinstance(check, Result) and type(check).__dataclass_params__.frozen
    doc = document(check)
    assert render_text(doc, "csv").startswith("name,type,cnnscope_macs,cnnscope_flops,fvcore,")
    assert "| **total** |" in render_text(doc, "md")


def test_kinds_and_statuses_are_enums_equal_to_their_old_strings(results):
    from cnnscope.results import FieldStatus, LayerKind

    layer = results["ModelReport"].layers[0]
    assert type(layer.kind) is LayerKind and layer.kind == "module" and f"{layer.kind}" == "module"
    assert type(results["ShapeReport"].rows[0].kind) is LayerKind
    field = results["ReceptiveFieldReport"].visible_layers()[-1]
    assert type(field.status) is FieldStatus and field.status in ("global", "spatial")
    assert json.dumps([layer.kind, field.status]) == f'["module", "{field.status.value}"]'


@pytest.mark.parametrize("name", ["ModelReport", "ShapeReport", "ReceptiveFieldReport",
                                  "MemoryPlan", "ZooTable", "CheckResult", "Comparison",
                                  "BenchResult", "SpecTable", "SpecTables"])
def test_result_shows_itself_in_a_notebook_as_its_markdown(results, name):
    # Issue 23: Jupyter calls _repr_markdown_ / _repr_html_; both come from the Document
    # that --format md renders.
    from html import escape

    from cnnscope.report.render import document

    result = results[name]
    doc = document(result)
    assert result._repr_markdown_() == render_text(doc, "md")
    html = result._repr_html_()
    assert html.count("<table>") == html.count("</table>") == sum(
        1 for part in (doc, *doc.parts) for s in part.sections
        if "md" in s.formats and any(c.shown for c in s.columns))
    for part in (doc, *doc.parts):  # every title and footer line is there, escaped
        if part.heading:
            assert escape(part.title) in html
        for line in (part.footer if part.full_footer is None else part.full_footer):
            assert escape(line.strip()) in html
