"""Issue 13 item 2: tables readable at any width, plain when piped, whole with --wide."""

import io

import pytest
from rich.console import Console

from cnnscope.report.boxtable import LayoutColumn, layout_table, shorten_middle
from cnnscope.report.render import render_table

BOX = set("┏┳┓━┃│┡╇┩├┼┤└┴┘")

# ResNet-50 (He et al. 2016, torchvision layout): stem conv1, bn1, relu, maxpool; 16
# Bottlenecks of 3 convs, 3 batch norms, 3 ReLU calls and the residual add; 4 downsample
# conv + bn pairs (first block of each stage); avgpool and fc.
RESNET50_ROWS = 4 + 16 * (3 + 3 + 3 + 1) + 4 * 2 + 2


def _terminal(width):
    return Console(width=width, file=io.StringIO(), color_system=None, force_terminal=True)


def _table_lines(text):
    lines = text.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith(("params ", "left out", "… =")))
    return lines[:end], lines[end:]


def test_shorten_middle_keeps_start_and_leaf():
    # 18 cells: 1 for "…", the end keeps half of the other 17 rounded up (9), the start 8.
    name = "layer1.0.downsample.0"
    assert shorten_middle(name, 18) == name[:8] + "…" + name[-9:] == "layer1.0…nsample.0"
    assert shorten_middle(name, 21) == name  # fits: unchanged
    # A long leaf is kept whole when it fits: ".downsample_conv" is 16 cells of 20 - 1.
    assert shorten_middle("features.block.downsample_conv", 20).endswith(".downsample_conv")


def test_resnet50_fits_80_columns_one_line_per_row(zoo_report):
    report = zoo_report("resnet50")
    rows = report.visible_layers()
    assert len(rows) == RESNET50_ROWS
    con = _terminal(80)
    render_table(report, con, rows=rows)
    table, footer = _table_lines(con.file.getvalue())
    assert max(len(line) for line in table) <= 80
    body = [line for line in table if line.startswith("│")]
    assert len(body) == RESNET50_ROWS + 1  # one line per layer, plus the total: no folding
    for line, r in zip(body, rows):
        shown = line.split("│")[1].strip()
        assert shown == r.name or (
            "…" in shown and r.name.startswith(shown.split("…")[0])
            and r.name.endswith(shown.split("…")[1]) and r.name.endswith(r.name.split(".")[-1]))
    # the total row, title, 3 rules (top, under the header, bottom), header, and 6 section
    # rules (stem | layer1 | layer2 | layer3 | layer4 | head | total)
    assert len(table) == RESNET50_ROWS + 1 + 1 + 3 + 1 + 6
    # Type names stay whole (issue 23: "AdaptiveAvgPool2d" is 17 cells), so the output
    # shape goes before any name is shortened; every ResNet-50 name fits whole at 80.
    assert footer[0] == "left out to fit 80 columns: geometry, output, FLOPs (--wide shows all)"
    assert not footer[1].startswith("…")
    assert "AdaptiveAvgPool2d" in "\n".join(table)
    assert "4,089,184,256" in table[-2]  # MACs total (torchvision's 4.09 GMACs) still shown


def test_priority_geometry_then_flops_then_output_then_type(zoo_report):
    report = zoo_report("resnet50")
    seen = []
    for width in (120, 105, 80, 70, 56):
        con = _terminal(width)
        render_table(report, con, rows=report.visible_layers())
        table, footer = _table_lines(con.file.getvalue())
        assert max(len(line) for line in table) <= width
        note = next((line for line in footer if line.startswith("left out")), "")
        seen.append(note.split(": ", 1)[1].split(" (")[0] if note else "")
    assert seen == ["", "geometry", "geometry, output, FLOPs", "type, geometry, output, FLOPs",
                    "type, geometry, output, FLOPs"]


def test_wide_shows_every_column_and_whole_names(zoo_report):
    report = zoo_report("resnet50")
    con = _terminal(80)
    render_table(report, con, wide=True, rows=report.visible_layers())
    text = con.file.getvalue()
    assert "layer1.0.downsample.0" in text and "geometry" in text and "FLOPs" in text
    assert "left out" not in text and "…" not in text
    total = next(line for line in text.splitlines() if line.startswith("│ total"))
    assert total.split("│")[-2].strip() == "8,217,632,232"  # the FLOPs column, whole


def test_numbers_never_cut_even_when_nothing_else_can_go():
    cols = [LayoutColumn("layer", shorten=8), LayoutColumn("MACs", right=True)]
    fitted = layout_table(cols, [["features.denseblock4.denselayer32.conv2", "1,234,567,890"]],
                          max_width=30)
    assert "1,234,567,890" in fitted.text.plain and fitted.shortened


def test_piped_output_is_plain_aligned_text(run):
    res = run("params", "resnet18", env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    table, _ = _table_lines(res.stdout)
    assert not BOX & set(res.stdout) and "\x1b" not in res.stdout
    assert max(len(line) for line in table) <= 100
    header = table[1]
    total = next(line for line in table if line.startswith("total"))
    # right-aligned numbers: the total's MACs end where the MACs header ends
    assert total.split()[2] == "1,814,073,344"  # torchvision's 1.81 GMACs for ResNet-18
    assert header.index("MACs") + len("MACs") == total.index("1,814,073,344") + len("1,814,073,344")


def test_piped_default_is_page_wide_not_416(run):
    res = run("params", "resnet50", env={"COLUMNS": ""})
    table, _ = _table_lines(res.stdout)
    assert max(len(line) for line in table) <= 160
    assert "layer1.0.downsample.0" in res.stdout  # at 160 every name is whole
    # the footer too: the convention (about 690 characters, --explain) is wrapped at spaces
    res = run("params", "resnet50", "--explain", env={"COLUMNS": ""})
    assert max(len(line) for line in res.stdout.splitlines()) <= 160
    assert "Convention: params:" in res.stdout and "FLOPs / bytes_moved." in res.stdout


@pytest.mark.parametrize("command", [["rf", "googlenet"], ["shape", "googlenet"],
                                     ["layers", "densenet121"]])
def test_rf_shape_and_layers_fit_80_with_whole_rows(run, command):
    res = run(*command, env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    end = next((i for i in range(header + 2, len(lines)) if lines[i].startswith(
        ("params ", "final", "output ", "left out", "… ="))), len(lines))
    assert max(len(line) for line in lines[:end]) <= 80
    wide = run(*command, "--wide", env={"COLUMNS": "80"})
    assert wide.exit_code == 0 and "left out" not in wide.stdout and "…" not in wide.stdout
    assert max(len(line) for line in wide.stdout.splitlines()[:end]) > 80


def test_rf_at_80_keeps_field_and_stride(run):
    res = run("rf", "googlenet", env={"COLUMNS": "80"})
    header = next(line for line in res.stdout.splitlines() if line.startswith("layer "))
    assert "RF" in header and "stride" in header
    assert "left out to fit 80 columns" in res.stdout


def test_compare_many_models_is_cut_into_parts_that_fit(run):
    models = ["resnet18", "resnet50", "vgg16", "densenet121", "mobilenet_v2"]
    res = run("compare", *models, env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    table = res.stdout.split("cut into ")[0]
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "part 2 of 2" in table and all(m in table for m in models)
    assert "138,357,544" in table  # VGG-16's params (torchvision), whole
    wide = run("compare", *models, "--wide", env={"COLUMNS": "80"})
    assert "part 1" not in wide.stdout and "cut into" not in wide.stdout


def test_spec_table_is_cut_into_parts_that_fit(run):
    res = run("spec", "googlenet", env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    table = res.stdout.split("cut into ")[0]
    assert max(len(line) for line in table.splitlines()) <= 80
    for column in ("patch size/stride", "#3x3 reduce", "pool proj", "paper ops", "check"):
        assert column in table
    assert table.count("inception (4e)") >= 2  # the row labels head every part
    wide = run("spec", "googlenet", "--wide", env={"COLUMNS": "80"})
    assert "part 1" not in wide.stdout


def test_shape_leaves_out_input_before_type(zoo_report):
    from cnnscope.analysis.shapes import output_sizes
    from cnnscope.report.document import render_table
    from cnnscope.report.render import document

    result = output_sizes(zoo_report("unet"))
    notes = []
    for width in (80, 64):
        con = _terminal(width)
        render_table(document(result), con)
        notes.append(next(line for line in con.file.getvalue().splitlines()
                          if line.startswith("left out")))
    assert notes == ["left out to fit 80 columns: input (--wide shows all)",
                     "left out to fit 64 columns: type, input (--wide shows all)"]
