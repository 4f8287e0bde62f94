"""``cnnscope spec``: formats, model-name resolution, errors as one line."""

from __future__ import annotations

import csv
import io
import json

import pytest


def test_csv_of_googlenet(run):
    result = run("spec", "googlenet", "-f", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0][:4] == ["type", "patch size/stride", "output size", "depth"]
    assert rows[0][-2:] == ["check", "note"]
    assert rows[1][10:14] == ["9.2K", "2.7K", "118.0M", "34M"]


def test_markdown_and_json(run):
    md = run("spec", "mobilenet_v2", "-f", "md")
    assert md.exit_code == 0
    assert md.stdout.startswith("## MobileNetV2") and "| input | operator |" in md.stdout
    js = run("spec", "mobilenet_v2", "-f", "json")
    data = json.loads(js.stdout)
    assert data["key"] == "mobilenet_v2" and data["columns"][0] == "input"
    assert data["data"]["params"] == 3_504_872


def test_rich_table_names_the_source(run):
    result = run("spec", "googlenet")
    assert result.exit_code == 0
    assert "Szegedy" in result.stdout and "inception (3a)" in result.stdout


def test_model_name_selects_its_family_table(run):
    result = run("spec", "resnet50", "-f", "csv")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].startswith("layer name,output size,18-layer")


@pytest.mark.parametrize("args, text", [
    (("spec", "nosuchnet"), "no spec table for 'nosuchnet'"),
    (("spec", "alexnet"), "no spec table for 'alexnet'"),
    (("spec",), "missing MODEL"),
    (("spec", "vgg", "--all"), "not both"),
])
def test_errors_are_one_line(run, args, text):
    result = run(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0]
    assert "Traceback" not in result.output


def test_all_to_a_folder_writes_the_committed_set(run, tmp_path):
    result = run("spec", "--all", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(f"{k}.{ext}" for k in ("googlenet", "resnet", "densenet", "vgg",
                                                  "mobilenet_v2") for ext in ("csv", "md"))
