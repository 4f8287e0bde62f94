"""Lock files: create, check, detect drift; cnnscope.testing for users' test suites."""

import json
import textwrap

import pytest

from cnnscope.analysis.snapshot import (
    SCHEMA_VERSION,
    LockFileError,
    dump_lock,
    load_lock,
    parse_rtol,
)
from cnnscope.api import check_lock, make_lock
from cnnscope.errors import InvalidOptionError
from cnnscope.testing import assert_matches_lock

NET = """
    from torch import nn

    def build(width=4, extra=False):
        layers = [nn.Conv2d(3, width, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if extra:
            layers.append(nn.Linear(width, width))
        layers.append(nn.Linear(width, 2))
        return nn.Sequential(*layers)

    build.input_size = (3, 8, 8)
"""


@pytest.fixture()
def user_model(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(textwrap.dedent(NET))
    return f"{path}:build"


def test_lock_records_what_the_issue_lists(user_model):
    lock = make_lock([user_model], model_kwargs={"width": 4})
    assert lock["schema_version"] == SCHEMA_VERSION
    assert {"cnnscope_version", "torch_version"} <= set(lock)
    (entry,) = lock["models"]
    assert entry["spec"] == user_model and entry["args"] == {"width": "4"}
    assert entry["input_size"] == [3, 8, 8] and entry["batch"] == 1
    conv, fc = 3 * 4 * 3 * 3 + 4, 4 * 2 + 2
    assert entry["params"] == conv + fc
    # conv: 4 x 6 x 6 outputs x 27 MACs; linear 4 x 2.
    assert entry["macs"] == 4 * 6 * 6 * 27 + 4 * 2
    assert entry["output_shapes"] == [[1, 2]]
    # Sequential names its layers 0..4: conv, relu, pool, flatten, linear.
    assert entry["layers"] == {"0": conv, "4": fc}
    assert json.loads(dump_lock(lock)) == lock


def test_check_passes_then_detects_a_changed_model(tmp_path, user_model):
    lock_path = tmp_path / "cnnscope.lock.json"
    lock_path.write_text(dump_lock(make_lock([user_model], lock_folder=tmp_path)))
    assert check_lock(lock_path).ok
    # The user's model changes: an extra Linear(4, 4) layer.
    net = user_model.rsplit(":", 1)[0]
    source = open(net).read().replace("extra=False", "extra=True")
    open(net, "w").write(source)
    import os
    os.utime(net, ns=(1, 1))  # a new mtime makes the loader read the file again
    result = check_lock(lock_path)
    assert not result.ok
    fields = {d.field: d for d in result.drifts}
    assert fields["params"].delta == 4 * 4 + 4
    assert fields["macs"].delta == 4 * 4
    # Layer "4" was the classifier (4 -> 2) and is now the new Linear(4, 4); the
    # classifier moved to "5".
    assert (fields["layer 4 params"].old, fields["layer 4 params"].new) == (4 * 2 + 2, 4 * 4 + 4)
    assert (fields["layer 5 params"].old, fields["layer 5 params"].new) == ("(absent)", 4 * 2 + 2)


def test_edited_lock_is_detected_field_by_field(tmp_path):
    lock = make_lock(["lenet5"])
    m = lock["models"][0]
    m["params"] += 1
    m["macs"] = int(m["macs"] * 1.005)
    m["output_shapes"] = [[1, 11]]
    first_layer = next(iter(m["layers"]))
    m["layers"][first_layer] -= 2
    path = tmp_path / "l.json"
    path.write_text(dump_lock(lock))
    result = check_lock(path)
    by_field = {d.field: d for d in result.drifts}
    assert by_field["params"].delta == -1
    assert by_field["output_shapes"].old == "1x11" and by_field["output_shapes"].new == "1x10"
    assert by_field[f"layer {first_layer} params"].delta == 2
    assert "macs" in by_field
    # A 1% tolerance on MACs/FLOPs hides the MAC change, never the params change.
    loose = check_lock(path, parse_rtol(["0.01"]))
    assert "macs" not in {d.field for d in loose.drifts}
    assert "params" in {d.field for d in loose.drifts}


def test_rtol_parsing():
    assert parse_rtol(None) == {"params": 0.0, "trainable_params": 0.0, "macs": 0.0, "flops": 0.0}
    assert parse_rtol(["0.02"])["macs"] == 0.02 and parse_rtol(["0.02"])["params"] == 0.0
    assert parse_rtol(["params=0.1"])["params"] == 0.1
    for bad in ("x", "-1", "depth=0.1", "macs=abc"):
        with pytest.raises(InvalidOptionError):
            parse_rtol([bad])


def test_a_model_that_no_longer_loads_is_a_drift(tmp_path):
    lock = make_lock(["lenet5"])
    lock["models"][0]["spec"] = "lenet6"
    path = tmp_path / "l.json"
    path.write_text(dump_lock(lock))
    (d,) = check_lock(path).drifts
    assert d.field == "error" and "unknown model 'lenet6'" in d.new


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("{not json", "is not JSON"),
    ('{"models": []}', "no schema_version"),
    ('{"schema_version": 99, "models": []}', "schema version 99"),
    ('{"schema_version": 1}', "models must be a list, not null"),
    ('{"schema_version": 1, "models": [{"spec": "lenet5"}]}', r"models\[0\] \(lenet5\).input_size must be a list"),
])
def test_bad_lock_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "lock.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(LockFileError, match=message) as err:
        load_lock(path)
    assert "\n" not in str(err.value)


def test_args_that_are_not_literals_are_refused(user_model):
    with pytest.raises(InvalidOptionError, match="not a Python literal"):
        make_lock([user_model], model_kwargs={"width": object()})


def test_tuple_args_round_trip(tmp_path):
    lock = make_lock(["lenet5"], model_kwargs={"num_classes": 7})
    assert lock["models"][0]["args"] == {"num_classes": "7"}
    path = tmp_path / "l.json"
    path.write_text(dump_lock(lock))
    assert check_lock(path).ok


def test_testing_helper_passes_and_fails(tmp_path):
    path = tmp_path / "l.json"
    lock = make_lock(["lenet5", "nin"])
    path.write_text(dump_lock(lock))
    assert assert_matches_lock(path).checked == ("lenet5", "nin")
    lock["models"][1]["params"] -= 10
    path.write_text(dump_lock(lock))
    with pytest.raises(AssertionError, match=r"nin: params: .* \(\+10"):
        assert_matches_lock(path)
    assert assert_matches_lock(path, models=["lenet5"]).ok
