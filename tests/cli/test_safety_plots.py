"""Plots: one file per output (--plot and -o may not name one file), and a backend
cnnscope chooses for files whatever MPLBACKEND says."""

import os
import subprocess

import pytest

pytest.importorskip("matplotlib")


def _same_in_three_ways(tmp_path, how):
    """The plot and the -o file as one file. By name, -o carries the picture's extension
    and is refused as a picture (-o writes text); through links it has a text name, and
    only the same-file check can refuse it."""
    plot = tmp_path / "x.svg"
    if how == "name":
        return str(plot), str(plot)
    if how == "relative":
        return str(plot), str(tmp_path / "." / "sub" / ".." / "x.svg")
    if how == "symlink":
        (tmp_path / "link.txt").symlink_to(plot)
        return str(plot), str(tmp_path / "link.txt")
    plot.write_text("old")  # a hard link: two names, one file
    os.link(plot, tmp_path / "hard.txt")
    return str(plot), str(tmp_path / "hard.txt")


@pytest.mark.parametrize("how", ["name", "relative", "symlink", "hardlink"])
@pytest.mark.parametrize("command", [
    ["memory", "lenet5"], ["params", "lenet5"], ["rf", "lenet5"], ["compare", "lenet5", "alexnet"],
    ["bench", "lenet5", "--per-layer", "--device", "cpu"],
])
def test_plot_and_output_naming_one_file_are_refused_before_any_work(run_main, tmp_path, how, command):
    (tmp_path / "sub").mkdir()
    plot, output = _same_in_three_ways(tmp_path, how)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_main(*command, "--plot", plot, "-o", output)
    assert result.exit_code == 2 and result.stdout == "", result.output
    lines = result.stderr.strip().splitlines()
    why = "is a picture, and -o writes text" if how in ("name", "relative") else "--plot and -o both name"
    assert len(lines) == 1 and why in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if how == "hardlink":
        assert (tmp_path / "x.svg").read_text() == "old"


def test_two_files_are_both_written(run, tmp_path):
    result = run("memory", "lenet5", "--plot", str(tmp_path / "m.svg"), "-o", str(tmp_path / "m.json"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.svg").read_bytes().lstrip().startswith(b"<?xml")
    assert (tmp_path / "m.json").read_text().startswith("{")


def test_an_unknown_mplbackend_does_not_stop_a_plot(tmp_path, warm_python):
    """matplotlib raises ValueError at import for a backend it does not know: a process
    of its own, since the variable is read once per process (the warm interpreter has
    not imported matplotlib: its fork does, with this environment)."""
    env = {**os.environ, "MPLBACKEND": "nosuchbackend", "COLUMNS": "80"}
    done = subprocess.run([warm_python, "-m", "cnnscope", "memory", "lenet5", "--plot",
                           str(tmp_path / "m.png")], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_may_not_write_its_report_over_the_lock(run, tmp_path):
    lock = tmp_path / "l.json"
    assert run("snapshot", "lenet5", "-o", str(lock)).exit_code == 0
    before = lock.read_bytes()
    (tmp_path / "alias.json").symlink_to(lock)
    for output in (str(lock), str(tmp_path / "alias.json")):
        result = run("check", str(lock), "-o", output)
        assert result.exit_code == 2 and "names the lock file being checked" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert lock.read_bytes() == before


def test_snapshot_may_not_write_the_lock_over_a_model_file(run, tmp_path):
    net = tmp_path / "net.py"
    net.write_text("from torch import nn\n\ndef build():\n    return nn.Linear(4, 2)\n\n"
                   "build.input_size = (4,)\n")
    before = net.read_bytes()
    result = run("snapshot", f"{net}:build", "-o", str(net))
    assert result.exit_code == 2 and "names a model file" in result.stderr
    assert net.read_bytes() == before
