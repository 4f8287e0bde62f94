"""``cnnscope zoo``: the listing in every format, filtered, and an empty match as one line."""

from __future__ import annotations

import csv
import io
import json


def test_csv_lists_the_matching_models_with_exact_counts(run):
    result = run("zoo", "lenet*", "-f", "csv")
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert (row["name"], row["family"], row["input_size"]) == ("lenet5", "LeNet", "1x32x32")
    # LeCun et al. 1998, Sec. II-B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164,
    # plus the 84x10 RBF output weights (nn.Parameters here, frozen in the paper).
    assert int(row["params"]) == 156 + 12 + 1516 + 32 + 48120 + 10164 + 84 * 10


def test_json_is_the_api_result_and_counts_match_a_trace(run):
    import cnnscope
    from cnnscope.api import zoo_table

    result = run("zoo", "resnet1*", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == json.loads(json.dumps(zoo_table("resnet1*").to_dict()))
    by_name = {m["name"]: m for m in data["models"]}
    assert set(by_name) == {"resnet18", "resnet101", "resnet152", "resnet101_v1", "resnet152_v1"}
    # torchvision's published parameter count of resnet18 (ResNet18_Weights.IMAGENET1K_V1)
    assert by_name["resnet18"]["params"] == 11_689_512
    assert by_name["resnet152"]["macs"] == cnnscope.analyze("resnet152").totals.macs


def test_no_counts_leaves_the_count_columns_empty(run):
    result = run("zoo", "vgg1*", "--no-counts", "-f", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["name"] for r in rows] == ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
                                         "vgg16_bn", "vgg19", "vgg19_bn"]
    assert all(r["params"] == "" and r["macs"] == "" for r in rows)


def test_a_pattern_that_matches_nothing_is_one_line_naming_the_families(run, one_line_error):
    line = one_line_error(run("zoo", "nosuchnet*"))
    assert "no model matches 'nosuchnet*'" in line and "ResNet" in line
