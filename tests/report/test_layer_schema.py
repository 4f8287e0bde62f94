"""Issue 13 item 6: one layer-table schema for the CLI CSV, the report's
``<model>.layers.csv``, ``ModelReport.to_pandas()`` and the JSON ``layers`` list."""

import csv
import io
import json

import pandas as pd

from cnnscope.trace.records import LAYER_COLUMNS, layer_to_dict

# ResNet-18 (He et al. 2016, torchvision's layout): stem conv1, bn1, relu, maxpool; eight
# BasicBlocks of conv1, bn1, relu, conv2, bn2, add, relu (the block's ReLU is called
# twice); three downsample conv + bn pairs; avgpool and fc. torch.flatten is a "shape"
# record that no table shows.
RESNET18_ROWS = 4 + 8 * 7 + 3 * 2 + 2
RESNET18_RECORDS = RESNET18_ROWS + 1


def _cli_csv(run, *extra):
    res = run("layers", "resnet18", "--format", "csv", *extra)
    assert res.exit_code == 0, res.output
    return res.stdout


def test_cli_csv_report_csv_and_pandas_have_one_schema(run, zoo_report, tmp_path):
    report = zoo_report("resnet18")
    assert len(report.layers) == RESNET18_RECORDS
    cli = _cli_csv(run)
    res = run("report", "resnet18", "-o", str(tmp_path))
    assert res.exit_code == 0, res.output
    filed = (tmp_path / "resnet18.layers.csv").read_text()
    frame = report.to_pandas()

    cli_rows = list(csv.reader(io.StringIO(cli)))
    file_rows = list(csv.reader(io.StringIO(filed)))
    assert cli_rows[0] == file_rows[0] == list(frame.columns) == list(LAYER_COLUMNS)
    assert list(LAYER_COLUMNS) == list(layer_to_dict(report.layers[0]))  # the one definition
    assert len(cli_rows) - 1 == len(file_rows) - 1 == len(frame) == RESNET18_ROWS
    json_layers = json.loads(report.to_json())["layers"]
    assert len(json_layers) == RESNET18_ROWS and list(json_layers[0]) == list(LAYER_COLUMNS)
    assert cli == filed  # same cells too, at --depth 0


def test_no_form_shows_the_shape_records(run, zoo_report):
    report = zoo_report("resnet18")
    assert [r.type for r in report.layers if r.kind == "shape"] == ["view"]  # torch.flatten, traced as a view
    cli = pd.read_csv(io.StringIO(_cli_csv(run)))
    assert "shape" not in set(cli["kind"]) and "shape" not in set(report.to_pandas()["kind"])
    assert "view" not in set(cli["type"])


def test_one_empty_value_convention(run, zoo_report):
    # A missing value (no kernel on a ReLU, no unsupported ops) is an empty cell in both
    # CSVs, never "-", and pandas' <NA> (pd.NA) in the DataFrame, whatever the column.
    report = zoo_report("resnet18")
    for text in (_cli_csv(run), report.to_csv()):
        rows = list(csv.DictReader(io.StringIO(text)))
        relu = next(r for r in rows if r["type"] == "ReLU")
        assert relu["kernel_size"] == relu["stride"] == relu["groups"] == ""
        assert relu["unsupported"] == ""
        assert all("-" != cell for r in rows for cell in r.values())
    frame = report.to_pandas()
    relu = frame[frame["type"] == "ReLU"].iloc[0]
    assert relu["kernel_size"] is pd.NA and relu["groups"] is pd.NA
    assert relu["unsupported"] is pd.NA  # was '' beside None elsewhere (issue 23)
    assert str(frame["unsupported"].dtype) == "string"


def test_grouped_csv_keeps_the_schema(run):
    rows = list(csv.reader(io.StringIO(_cli_csv(run, "--depth", "1"))))
    assert rows[0] == list(LAYER_COLUMNS)
    # conv1 bn1 relu maxpool layer1..layer4 avgpool fc
    assert len(rows) - 1 == 4 + 4 + 2


def test_train_csv_header_names_the_backward_columns_its_rows_carry(run):
    # --train counts the backward pass: each row gains backward_macs and backward_flops,
    # and the header must name them (it once had two names fewer than its rows).
    import cnnscope

    res = run("layers", "lenet5", "--train", "--format", "csv")
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows[0] == [*LAYER_COLUMNS, "backward_macs", "backward_flops"]
    assert all(len(r) == len(rows[0]) for r in rows[1:])
    conv = dict(zip(rows[0], rows[1]))
    # LeNet-5's C1: 6 maps of 28x28 from a 5x5 window of one input map = 117,600 MACs
    # forward; no input gradient for the first layer, so the backward is the weight
    # gradient alone: the same 117,600 multiply-adds.
    assert (conv["name"], conv["macs"], conv["backward_macs"]) == ("c1", "117600", "117600")
    api = cnnscope.analyze("lenet5", train=True).to_csv()
    assert api.splitlines()[0] == res.stdout.splitlines()[0]
