"""``cnnscope rf`` and ``cnnscope shape``: formats, files, limits, one-line errors."""

from __future__ import annotations

import csv
import io
import json

import pytest

# ---------------------------------------------------------------------- rf


def test_rf_json_has_layers_and_final(run):
    result = run("rf", "vgg16", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # VGG-16 pool5: 212 pixels, jump 32 (arithmetic in tests/analysis/test_receptive_field.py)
    assert data["final"]["receptive_field"] == [212, 212]
    assert data["final"]["effective_stride"] == [32, 32]
    assert "effective_padding" in data["final"]
    conv5_3 = next(row for row in data["layers"] if row["name"] == "features.28")
    assert conv5_3["receptive_field"] == [196, 196] and conv5_3["effective_stride"] == [16, 16]
    fc = next(row for row in data["layers"] if row["name"] == "classifier.0")
    assert fc["status"] == "global" and fc["receptive_field"] == [None, None]


def test_rf_table_shows_final_line_and_convention(run):
    result = run("rf", "resnet50")
    assert result.exit_code == 0, result.output
    assert "final spatial map layer4.2.relu#3" in result.stdout
    assert "receptive field 427" in result.stdout
    assert "RF: field width in input pixels" in result.stdout  # the brief convention
    assert "Convention: receptive field: width" in run("rf", "resnet50", "--explain").stdout


def test_rf_csv_and_markdown(run, tmp_path):
    out = tmp_path / "rf.csv"
    result = run("rf", "alexnet", "-f", "csv", "-o", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    conv5 = next(r for r in rows if r["name"] == "features.12")
    assert conv5["receptive_field"] == "163" and conv5["effective_stride"] == "16"
    md = run("rf", "alexnet", "-f", "md")
    assert md.exit_code == 0 and "| features.12 | Conv2d |" in md.stdout


def test_rf_reports_misalignment_in_the_output(run):
    # U-Net at 570 (not a valid size): the pools floor odd maps and the crops are off-centre.
    result = run("rf", "unet", "--input", "1x570x570", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["warnings"] and all("not aligned" in w for w in data["warnings"])
    table = run("rf", "unet", "--input", "1x570x570")
    assert "MISALIGNED" in table.stdout


def test_rf_fractional_stride_after_upsampling_in_json(run):
    data = json.loads(run("rf", "unet", "-f", "json").stdout)
    up1 = next(row for row in data["layers"] if row["name"] == "up1")
    # up1 doubles the resolution of a jump-2 map
    assert up1["effective_stride"] == [1, 1]
    up4 = next(row for row in data["layers"] if row["name"] == "up4")
    assert up4["effective_stride"] == [8, 8]


@pytest.mark.parametrize("args, needle", [
    (("rf", "no_such_model"), "unknown model"),
    (("rf", "vgg16", "--input", "3x224x224x2x2"), "malformed input size"),
    (("rf", "vgg16", "--input", "3x16x16"), "too small"),
    (("shape", "no_such_model"), "unknown model"),
    (("shape", "unet", "--near", "0"), "--near"),
])
def test_errors_are_one_line(run, one_line_error, args, needle):
    assert needle in one_line_error(run(*args))


# ---------------------------------------------------------------------- shape


def test_shape_table_shows_formulas(run):
    result = run("shape", "alexnet")
    assert result.exit_code == 0, result.output
    assert "55" in result.stdout and "out = floor((n + 2p - d(k-1) - 1)/s + 1)" in result.stdout
    assert "Formulas: conv/pool" in run("shape", "alexnet", "--explain").stdout


def test_shape_json_rows_and_min(run, tmp_path):
    out = tmp_path / "shape.json"
    result = run("shape", "vgg16", "--min", "-f", "json", "-o", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["min_input"] == [3, 32, 32]  # five 2x2/2 pools: 2**5
    assert "features.30" in data["min_reason"]
    first = data["layers"][0]
    assert first["formula"] == "floor((224 + 2*1 - 1*(3-1) - 1)/1 + 1) = 224"


def test_shape_too_small_names_the_layer_and_the_arithmetic(run, one_line_error):
    line = one_line_error(run("shape", "vgg16", "--input", "3x16x16"))
    assert "layer features.30 (MaxPool2d)" in line
    assert "floor((1 + 2*0 - 1*(2-1) - 1)/2 + 1) = 0" in line
    assert "3x32x32" in line  # the smallest input that works


def test_shape_unet_near(run):
    result = run("shape", "unet", "--near", "570", "-f", "md")
    assert result.exit_code == 0, result.output
    assert "valid sizes near 570: 556, 572" in result.stdout


def test_shape_csv(run):
    result = run("shape", "unet", "-f", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    up4 = next(r for r in rows if r["name"] == "up4")
    assert up4["output_shape"] == "1x512x56x56"
    assert up4["formula"] == "(28 - 1)*2 - 2*0 + 1*(2-1) + 0 + 1 = 56"


def test_help_texts(run):
    for cmd in ("rf", "shape"):
        result = run(cmd, "--help")
        assert result.exit_code == 0 and "--format" in result.stdout
