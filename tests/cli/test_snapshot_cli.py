"""``cnnscope snapshot`` / ``cnnscope check``: the regression gate's exit codes and table."""

import json
import textwrap


def test_snapshot_then_check_is_clean(run, tmp_path):
    lock = tmp_path / "cnnscope.lock.json"
    result = run("snapshot", "lenet5", "nin", "-o", lock)
    assert result.exit_code == 0, result.output
    data = json.loads(lock.read_text())
    assert [m["spec"] for m in data["models"]] == ["lenet5", "nin"]
    result = run("check", lock)
    assert result.exit_code == 0, result.output
    assert "OK: 2 models match" in result.stdout


def test_snapshot_to_stdout_and_with_input_and_args(run, tmp_path):
    result = run("snapshot", "lenet5", "--arg", "num_classes=7")
    assert result.exit_code == 0, result.output
    (m,) = json.loads(result.stdout)["models"]
    assert m["args"] == {"num_classes": "7"} and m["output_shapes"] == [[1, 7]]


def test_drift_exits_1_with_a_table(run, tmp_path):
    lock = tmp_path / "l.json"
    run("snapshot", "lenet5", "nin", "-o", lock)
    data = json.loads(lock.read_text())
    data["models"][1]["params"] += 1000
    lock.write_text(json.dumps(data))
    result = run("check", lock)
    assert result.exit_code == 1
    out = result.stdout
    for col in ("model", "field", "old", "new", "delta"):
        assert col in out
    assert "nin" in out and "params" in out and "-1,000" in out
    assert "DRIFT: 1 of 2 models changed" in out


def test_drift_as_json_and_csv(run, tmp_path):
    lock = tmp_path / "l.json"
    run("snapshot", "lenet5", "-o", lock)
    data = json.loads(lock.read_text())
    data["models"][0]["macs"] -= 5
    lock.write_text(json.dumps(data))
    result = run("check", lock, "-f", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["drifts"][0]["field"] == "macs" and report["drifts"][0]["delta"] == 5
    csv = run("check", lock, "-f", "csv")
    assert csv.exit_code == 1 and csv.stdout.startswith("model,field,old,new,delta")
    assert run("check", lock, "--rtol", "0.01").exit_code == 0
    assert run("check", lock, "--rtol", "params=0.01").exit_code == 1


def test_user_model_drift_is_caught(run, tmp_path):
    net = tmp_path / "net.py"
    net.write_text(textwrap.dedent("""
        from torch import nn
        def build(width=8):
            return nn.Sequential(nn.Conv2d(3, width, 3), nn.Flatten())
        build.input_size = (3, 8, 8)
    """))
    lock = tmp_path / "l.json"
    assert run("snapshot", f"{net}:build", "-o", lock).exit_code == 0
    net.write_text(net.read_text().replace("width=8", "width=9"))
    result = run("check", lock)
    assert result.exit_code == 1
    # conv 3->8 3x3 with bias = 224 params; 3->9 = 252.
    assert "+28" in result.stdout


def one_line(result):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    return lines[0]


def test_bad_lock_files_exit_2_with_one_line(run, tmp_path):
    assert "does not exist" in one_line(run("check", tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    assert "is not JSON" in one_line(run("check", bad))
    bad.write_text('{"schema_version": 2, "models": []}')
    assert "schema version 2" in one_line(run("check", bad))


def test_usage_errors_exit_2(run, tmp_path):
    lock = tmp_path / "l.json"
    run("snapshot", "lenet5", "-o", lock)
    assert "malformed --rtol" in one_line(run("check", lock, "--rtol", "lots"))
    assert "not in" in one_line(run("check", lock, "--model", "vgg16"))
    assert "no model to snapshot" in one_line(run("snapshot"))
    assert "unknown model" in one_line(run("snapshot", "lenet5", "nosuchnet", "-o", tmp_path / "x.json"))
    assert not (tmp_path / "x.json").exists()
