"""User code is contained: what it prints goes to stderr, and it cannot choose the exit
code (sys.exit, KeyboardInterrupt raised as a value, other BaseExceptions)."""

import json
import os
import signal
import subprocess
import textwrap
import time

import pytest

from cnnscope.cli.main import main

NET = """
    import os, sys
    from torch import nn

    class Talker(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            print("print from forward")
            os.write(1, b"raw write to fd 1 from forward\\n")
            return self.conv(x)

    def talk():
        print("print from the factory")
        return Talker()

    class Exits(nn.Module):
        def forward(self, x):
            sys.exit(0)

    def exit_in_forward():
        return Exits()

    def exit_in_factory():
        raise SystemExit(0)

    def interrupt_in_factory():
        raise KeyboardInterrupt

    class Custom(BaseException):
        pass

    def custom_base_exception():
        raise Custom("not an Exception")

    class Slow(nn.Module):
        def forward(self, x):
            import time
            open(os.environ["FORWARD_STARTED"], "w").close()
            time.sleep(60)
            return x

    def slow():
        return Slow()

    for f in (talk, exit_in_forward, exit_in_factory, interrupt_in_factory,
              custom_base_exception, slow):
        f.input_size = (3, 8, 8)
"""


@pytest.fixture()
def net(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(textwrap.dedent(NET))
    return path


@pytest.fixture
def cli(warm_python):
    """``python -m cnnscope ...`` in a real process (a fork of the warm interpreter)."""
    def call(*args, **kwargs):
        return subprocess.run([warm_python, "-m", "cnnscope", *map(str, args)],
                              capture_output=True, text=True, timeout=120, **kwargs)

    return call


def test_prints_from_the_factory_and_forward_go_to_stderr_and_json_stays_valid(net, cli):
    done = cli("params", f"{net}:talk", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # nothing else in stdout
    assert data["totals"]["params"] == 4 * 3 * 3 * 3 + 4
    for line in ("print from the factory", "print from forward", "raw write to fd 1 from forward"):
        assert line in done.stderr and line not in done.stdout


def test_prints_go_to_stderr_in_process_too(net, capsys):
    assert main(["params", f"{net}:talk", "-f", "json"]) == 0
    out, err = capsys.readouterr()
    json.loads(out)
    assert "print from the factory" in err and "print from forward" in err


@pytest.mark.parametrize("factory, said", [
    ("exit_in_factory", "model factory {net}:exit_in_factory called sys.exit(0)"),
    ("exit_in_forward", "forward pass of {net}:exit_in_forward called sys.exit(0)"),
    ("interrupt_in_factory", "model factory {net}:interrupt_in_factory raised KeyboardInterrupt"),
    ("custom_base_exception", "model factory {net}:custom_base_exception raised Custom: "
                              "not an Exception"),
])
def test_user_code_cannot_end_the_process_with_a_code_of_its_choice(net, factory, said, run_main):
    # In-process: a SystemExit or KeyboardInterrupt that escaped main() would end the test
    # with it; the whole chain through a real process is checked once below.
    done = run_main("params", f"{net}:{factory}", "-f", "json")
    assert done.exit_code == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith("cnnscope: error: " + said.format(net=net))


def test_user_code_cannot_end_a_real_process_with_exit_zero(net, cli):
    done = cli("params", f"{net}:exit_in_forward", "-f", "json")
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"cnnscope: error: forward pass of {net}:exit_in_forward "
                               "called sys.exit(0)")


@pytest.mark.parametrize("factory", ["exit_in_factory", "exit_in_forward", "interrupt_in_factory"])
def test_a_lock_whose_model_exits_zero_fails_the_gate(net, tmp_path, factory, capsys):
    lock = tmp_path / "l.json"
    assert main(["snapshot", f"{net}:talk", "-o", str(lock)]) == 0
    data = json.loads(lock.read_text())
    data["models"][0]["spec"] = f"net.py:{factory}"
    lock.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["check", str(lock)]) == 1  # drift: it fails now; never 0
    assert "fails now" in capsys.readouterr().out


def test_a_real_ctrl_c_is_still_exit_130(net, tmp_path, warm_python):
    started = tmp_path / "started"
    proc = subprocess.Popen([warm_python, "-m", "cnnscope", "params", f"{net}:slow",
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "FORWARD_STARTED": str(started)})
    try:
        deadline = time.monotonic() + 90
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), "the forward pass never started"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "cnnscope: interrupted"
