"""boxtable must print what rich.table.Table prints, character for character."""

import io

import pytest
from rich.console import Console
from rich.table import Table

import cnnscope
from cnnscope.report.boxtable import SECTION, LayoutColumn, box_table
from cnnscope.report.layers import _geometry, title
from cnnscope.report.render import render_table
from cnnscope.units import shape, thousands


def _print(renderable, width: int) -> str:
    con = Console(width=width, file=io.StringIO(), color_system=None)
    con.print(renderable, highlight=False, soft_wrap=isinstance(renderable, type(box_table([LayoutColumn("a")], []))))
    return con.file.getvalue()


def _rich_layer_table(report, width: int) -> str:
    # The layout the layer table had when it used rich.table.Table (the reference).
    table = Table(title=title(report), header_style="bold")
    table.add_column("layer", overflow="fold", ratio=1)
    table.add_column("type", overflow="fold")
    table.add_column("geometry", overflow="fold")
    for col in ("output", "params", "MACs", "FLOPs"):
        table.add_column(col, justify="right", no_wrap=True)
    previous_top = previous_name = None
    for r in report.layers:
        top = r.name.split(".")[0]
        if previous_top is not None and top != previous_top and "." in r.name + (previous_name or ""):
            table.add_section()
        previous_name, previous_top = r.name, top
        table.add_row(r.name, r.type, _geometry(r), shape(r.output_shape[1:]),
                      thousands(r.params), thousands(r.macs), thousands(r.flops))
    t = report.totals
    table.add_section()
    table.add_row("total", "", "", "", thousands(t.params), thousands(t.macs), thousands(t.flops))
    return _print(table, width)


@pytest.mark.parametrize("model", ["lenet5", "alexnet", "resnet18", "googlenet", "capsnet"])
def test_layer_table_equals_rich_table(model):
    report = cnnscope.analyze(model)
    con = Console(width=160, file=io.StringIO(), color_system=None, force_terminal=True)
    render_table(report, con, rows=report.layers)
    ours = con.file.getvalue()
    table_part = ours[: ours.index("\nparams ") + 1]  # the footer lines follow the table
    assert table_part == _rich_layer_table(report, 160)


def test_sections_only_between_rows_and_styles_do_not_shift_text():
    cols = [LayoutColumn("name", fold=True), LayoutColumn("n", right=True)]
    rows = [SECTION, ["a", "1"], SECTION, SECTION, [("bold", "bold"), ("22", "red")], SECTION]
    ref = Table(title="t", header_style="bold")
    ref.add_column("name", overflow="fold")
    ref.add_column("n", justify="right", no_wrap=True)
    ref.add_row("a", "1")
    ref.add_section()
    ref.add_row("bold", "22")
    ref.add_section()
    assert _print(box_table(cols, rows, title="t"), 80) == _print(ref, 80)


def test_a_table_wider_than_the_page_folds_names_never_numbers():
    cols = [LayoutColumn("layer", fold=True), LayoutColumn("MACs", right=True)]
    long_name = "features.denseblock4.denselayer32.conv2"
    text = box_table(cols, [[long_name, "1,234,567,890"]], max_width=30).plain
    lines = text.splitlines()
    assert all(len(line) <= 30 for line in lines)
    assert "1,234,567,890" in text  # the number is whole, on one line
    assert "".join(line.split("│")[1].strip() for line in lines[3:-1]) == long_name


def _rich_rf_table(result, width: int) -> str:
    # The layout the rf table had with rich.table.Table (the reference).
    from cnnscope.report.rf_render import _cells, notes
    from cnnscope.report.rf_render import title as rf_title

    table = Table(title=rf_title(result), header_style="bold")
    table.add_column("layer", overflow="fold", ratio=1)
    table.add_column("type", overflow="fold")
    table.add_column("output", justify="right", no_wrap=True)
    for col in ("RF", "stride", "padding", "centre"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("notes", overflow="fold")
    previous_top = None
    for f in result.visible_layers():
        top = f.name.split(".")[0]
        if previous_top is not None and top != previous_top:
            table.add_section()
        previous_top = top
        table.add_row(f.name, f.type, shape(f.output_shape[1:]), *_cells(f), notes(f, result.axis_names))
    return _print(table, width)


def _rich_shape_table(result, width: int) -> str:
    from cnnscope.report.shape_render import title as shape_title

    table = Table(title=shape_title(result), header_style="bold")
    table.add_column("layer", overflow="fold", ratio=1)
    table.add_column("type", overflow="fold")
    table.add_column("input", justify="right", no_wrap=True)
    table.add_column("output", justify="right", no_wrap=True)
    table.add_column("formula", overflow="fold", ratio=2)
    for r in result.rows:
        table.add_row(r.name, r.type, shape(r.input_shape[1:]), shape(r.output_shape[1:]), r.formula)
    return _print(table, width)


@pytest.mark.parametrize("model", ["alexnet", "resnet18", "googlenet"])
def test_rf_and_shape_tables_equal_rich_tables(model):
    from cnnscope.analysis.receptive_field import receptive_fields
    from cnnscope.analysis.shapes import output_sizes
    from cnnscope.report.document import render_table
    from cnnscope.report.render import document

    report = cnnscope.analyze(model)
    for result, reference in ((receptive_fields(report), _rich_rf_table),
                              (output_sizes(report), _rich_shape_table)):
        con = Console(width=160, file=io.StringIO(), color_system=None, force_terminal=True)
        render_table(document(result), con)
        ours = con.file.getvalue()
        expected = reference(result, 160)
        assert ours[: len(expected)] == expected
