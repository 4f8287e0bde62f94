"""``cnnscope params/flops/layers``: outputs, JSON keys and every bad input of issue 2."""

import csv
import json

import pytest
import torch


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.count("\n") == 0, f"more than one line: {err!r}"
    assert "Traceback" not in result.output + result.stderr
    for f in fragments:
        assert f in err, f"{f!r} not in {err!r}"


def test_params_table_has_totals_and_convention(run):
    res = run("params", "resnet50")
    assert res.exit_code == 0, res.output
    assert "25,557,032" in res.stdout  # torchvision's published count
    assert "4,089,184,256" in res.stdout  # torchvision's published 4.09 GMACs
    # the brief convention in the table; the full text with --explain and in Markdown
    assert "MACs: multiply-accumulates, biases excluded" in res.stdout
    assert "(--explain: in full)" in res.stdout and "Convention:" not in res.stdout
    full = run("params", "resnet50", "--explain")
    assert "Convention: params: trainable + frozen nn.Parameters" in full.stdout
    assert "(--explain: in full)" not in full.stdout
    md = run("params", "resnet50", "--format", "md")
    assert "- Convention: params: trainable + frozen nn.Parameters" in md.stdout


def test_json_keys_other_tools_read(run):
    res = run("params", "vgg16", "--format", "json")
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert set(data["totals"]) >= {"params", "trainable_params", "macs", "flops"}
    assert data["totals"]["params"] == 138_357_544 and data["totals"]["macs"] == 15_470_264_320
    layer = data["layers"][0]
    assert set(layer) >= {"name", "type", "output_shape", "params", "macs"}
    assert layer["name"] == "features.0" and layer["output_shape"] == [1, 64, 224, 224]
    assert layer["params"] == 64 * 3 * 3 * 3 + 64


def test_depth_groups_rows_but_keeps_totals(run):
    full = json.loads(run("flops", "googlenet", "--format", "json").stdout)
    grouped = json.loads(run("flops", "googlenet", "--depth", "1", "--format", "json").stdout)
    assert grouped["totals"] == full["totals"]
    assert len(grouped["layers"]) < len(full["layers"])
    assert sum(r["macs"] for r in grouped["layers"]) == full["totals"]["macs"]
    assert all("." not in r["name"] for r in grouped["layers"])


def test_csv_to_file_with_input_and_batch(run, tmp_path):
    out = tmp_path / "vgg16.csv"
    res = run("layers", "vgg16", "--input", "3x512x512", "--batch", "8", "--format", "csv", "-o", str(out))
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("name,type,kind,input_shapes,output_shape")  # LAYER_COLUMNS
    first = next(csv.DictReader(lines))
    assert first["name"] == "features.0" and first["output_shape"] == "8x64x512x512"
    # 3x3 conv, 3 -> 64 channels, at 512x512, batch 8: MACs written as arithmetic.
    assert int(first["macs"]) == 8 * 64 * 512 * 512 * 3 * 3 * 3


def test_markdown_format(run):
    res = run("params", "lenet5", "--format", "md")
    assert res.exit_code == 0 and res.stdout.startswith("## lenet5")
    assert "| **total** |" in res.stdout and "60,840" in res.stdout


def test_python_m_entry_point(warm_python):
    import subprocess

    res = subprocess.run([warm_python, "-m", "cnnscope", "params", "lenet5", "--format", "json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["totals"]["trainable_params"] == 60_000


def test_unknown_model_suggests(run):
    assert_one_line_error(run("params", "resnet5"), "unknown model 'resnet5'", "resnet50")


@pytest.mark.parametrize("size", ["3x0x224", "abc", "3x224x224x2x2"])
def test_malformed_input(run, size):
    assert_one_line_error(run("params", "resnet18", "--input", size), repr(size))


def test_batch_below_one(run):
    assert_one_line_error(run("params", "resnet18", "--batch", "0"), "batch size 0")


def test_input_too_small_names_layer_and_smallest_size(run):
    res = run("params", "vgg16", "--input", "3x16x16")
    assert_one_line_error(res, "too small", "features.", "smallest input that works is 3x32x32")
    # 16 -> 8 -> 4 -> 2 -> 1 after four 2x2/2 pools; the fifth (features.30) gets a 1x1 map:
    # floor((1 + 2*0 - 1*(2-1) - 1)/2 + 1) = floor(-1/2 + 1) = 0.
    assert "layer features.30 (MaxPool2d) receives a 1x1 map" in res.output
    assert "floor((1 + 2*0 - 1*(2-1) - 1)/2 + 1) = 0" in res.output
    # Five 2x2 max pools need 32 = 2**5 pixels; 32 works (adaptive pool), 31 does not.
    assert run("params", "vgg16", "--input", "3x32x32", "--format", "json").exit_code == 0
    assert run("params", "vgg16", "--input", "3x31x31").exit_code == 2


def test_alexnet_too_small_says_the_classifier_is_fixed(run):
    # The paper's AlexNet has no adaptive pooling: its fc6 wants exactly 6x6x256.
    res = run("params", "alexnet", "--input", "3x32x32")
    assert_one_line_error(res, "too small", "features.", "3x67x67", "classifier accepts only 3x227x227")


def test_alexnet_smallest_input_by_arithmetic():
    # conv1 11/4 -> pool 3/2 -> conv2 5 p2 -> pool 3/2 -> conv3-5 3 p1 -> pool 3/2 needs a
    # 3x3 map before pool5, i.e. 7x7 before pool2, 15x15 before pool1, so the input n
    # must give floor((n - 11)/4) + 1 >= 15: n >= 67.
    from cnnscope import smallest_input

    assert smallest_input("alexnet") == 67


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(run):
    assert_one_line_error(run("params", "resnet18", "--device", "cuda"), "CUDA is not available")


def test_nothing_written_on_error(run, tmp_path):
    out = tmp_path / "never.json"
    res = run("params", "alexnet", "--input", "3x32x32", "--format", "json", "-o", str(out))
    assert res.exit_code == 2 and not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_output_into_missing_folder(run, tmp_path):
    res = run("params", "lenet5", "-o", str(tmp_path / "nope" / "x.csv"), "--format", "csv")
    assert_one_line_error(res, "does not exist")


def test_fvcore_counter_agrees_on_macs(run):
    ours = json.loads(run("params", "resnet18", "--format", "json").stdout)["totals"]
    theirs = json.loads(run("params", "resnet18", "--format", "json", "--counter", "fvcore").stdout)
    assert theirs["counter"] == "fvcore"
    assert theirs["totals"]["macs"] == ours["macs"] and theirs["totals"]["params"] == ours["params"]


def test_every_command_has_help(run):
    import typer.main

    from cnnscope.cli.main import app as the_app

    group = typer.main.get_group(the_app)
    for name, command in group.commands.items():
        assert command.help, f"command {name} has no help text"
        assert run(name, "--help").exit_code == 0


def test_version_and_bare_command(run):
    from cnnscope import __version__

    res = run("--version")
    assert res.exit_code == 0 and res.stdout.strip() == f"cnnscope {__version__}"
    bare = run()
    assert bare.exit_code == 0 and "params" in bare.stdout
