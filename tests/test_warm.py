"""tests/warm.py's stand-in interpreter behaves as the real one, seen from outside.

Each probe runs through ``sys.executable`` and through the warm stand-in, and what a
test can observe of a process must be the same: exit status (code or signal), standard
output and error, what the program sees of its argv, path, folder, environment, streams,
descriptors, limits and signals. The real interpreter is the reference; nothing here is
a value copied from the stand-in's own output.
"""

import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import textwrap
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.warm import QUICK_EXIT

# Probes of what a process sees and does before it ends skip the teardown at exit (~0.45
# CPU s a command with torch imported); the exit probes do not.
QUICK = {**os.environ, QUICK_EXIT: "1"}

PROBE = textwrap.dedent("""
    import os, resource, signal, sys
    print(sys.argv, sys.path[0] == os.getcwd() if sys.argv[0] != '-c' else sys.path[0])
    print(sys.orig_argv[1:], os.getcwd(), os.environ.get('PROBE_VALUE'))
    for s in (sys.stdin, sys.stdout, sys.stderr):
        print(s.encoding, s.errors, s.line_buffering, s.write_through, s.isatty(), s.name)
    print(sys.stdin.read())
    print(oct(os.umask(0)), resource.getrlimit(resource.RLIMIT_FSIZE), sorted(os.sched_getaffinity(0)))
    print(signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGHUP), signal.getsignal(signal.SIGPIPE))
    print(sys.flags.dont_write_bytecode, sys.dont_write_bytecode, sys.flags.isolated)
""")


def both(warm_python, args, **kwargs):
    kwargs = {"capture_output": True, "text": True, "timeout": 60, **kwargs}
    real = subprocess.run([sys.executable, *args], **kwargs)
    warm = subprocess.run([warm_python, *args], **kwargs)
    return real, warm


def same(real, warm):
    assert warm.returncode == real.returncode
    for name in ("stdout", "stderr"):
        assert (getattr(warm, name) or "").splitlines() == (getattr(real, name) or "").splitlines(), name


@pytest.mark.parametrize("code", [
    "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)",
    "import sys; sys.exit('a message')",
    "raise ValueError('broken')",
    "raise KeyboardInterrupt",
    "import os, signal; os.kill(os.getpid(), signal.SIGTERM)",
    "import atexit; atexit.register(print, 'at exit')",
    "import threading, time; threading.Thread(target=lambda: (time.sleep(0.2), print('late'))).start()",
    "import os; print('unflushed', end=''); os._exit(4)",
])
def test_exit_status_and_output_are_the_real_interpreters(warm_python, code):
    same(*both(warm_python, ["-c", code]))


@pytest.mark.parametrize("code", [
    "import atexit, sys, threading, time\n"
    "atexit.register(print, 'at exit')\n"
    "threading.Thread(target=lambda: (time.sleep(0.2), print('late'))).start()\n"
    "print('buffered', end=''); sys.exit(6)",
    "raise KeyboardInterrupt",
])
def test_a_quick_exit_still_joins_threads_runs_atexit_and_flushes(warm_python, code):
    same(*both(warm_python, ["-c", code], env=QUICK))


def test_argv_path_folder_environment_streams_limits_and_signals_are_passed(warm_python, tmp_path):
    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        os.umask(0o077)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup leaves it

    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = {**QUICK, "PROBE_VALUE": uuid.uuid4().hex}
    for args in (["-c", PROBE, "a", "b"], [str(script), "x"], ["-u", "-B", "-c", PROBE]):
        real, warm = both(warm_python, args, input="from stdin\n", cwd=tmp_path, env=env,
                          preexec_fn=limited)
        same(real, warm)
        assert real.returncode == 0, real.stderr
    cpus = sorted(os.sched_getaffinity(0))[:1]
    real, warm = both(warm_python, ["-c", PROBE], input="", cwd=tmp_path, env=QUICK,
                      preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    same(real, warm)


def test_a_module_run_with_m_and_pythonpath(warm_python, tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "probe.py").write_text(PROBE)
    env = {**QUICK, "PYTHONPATH": str(tmp_path)}
    real, warm = both(warm_python, ["-m", "pkg.probe", "--flag"], input="", env=env, cwd="/")
    same(real, warm)
    assert real.returncode == 0, real.stderr


def test_inherited_descriptors_keep_their_numbers_and_closed_stdout_stays_closed(warm_python):
    read, write = os.pipe()
    try:
        code = f"import os, sys; os.write({write}, b'through'); print(sys.stdout is None)"
        for python in (sys.executable, warm_python):
            done = subprocess.run([python, "-c", code], pass_fds=(write,), capture_output=True,
                                  timeout=60, env=QUICK)
            assert done.returncode == 0 and done.stdout == b"False\n", done.stderr
            assert os.read(read, 100) == b"through"
    finally:
        os.close(read)
        os.close(write)
    code = "import sys; sys.stderr.write(str(sys.stdout is None))"
    real, warm = both(warm_python, ["-c", code], capture_output=False, stdout=subprocess.DEVNULL,
                      stderr=subprocess.PIPE, env=QUICK, preexec_fn=lambda: os.close(1))
    same(real, warm)
    assert real.stderr == "True"


def test_preload_is_what_a_dedicated_interpreter_imports_and_only_there(warm_python):
    from tests.warm import warm_python as start

    code = "import sys; print('wave' in sys.modules)"  # imported by neither torch nor the server
    with start(preload=("wave",)) as dedicated:
        assert dedicated.run(["-c", code], capture_output=True, text=True, env=QUICK,
                             timeout=60).stdout == "True\n"
    shared = subprocess.run([warm_python, "-c", code], capture_output=True, text=True, env=QUICK,
                            timeout=60)
    assert shared.stdout == "False\n", shared.stderr


def test_a_signal_to_the_stand_in_reaches_the_command(warm_python):
    code = "import time; print('ready', flush=True); time.sleep(60)"
    for python in (sys.executable, warm_python):
        process = subprocess.Popen([python, "-c", code], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=QUICK)
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == -signal.SIGINT and err.rstrip().endswith("KeyboardInterrupt")


def test_killing_the_stand_in_ends_its_command(warm_python, tmp_path):
    marker = tmp_path / uuid.uuid4().hex  # written as long as the command lives
    code = (f"import time\nwhile True:\n    open({str(marker)!r}, 'a').write('.')\n"
            "    time.sleep(0.05)")
    process = subprocess.Popen([warm_python, "-c", code])
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()
    assert process.wait(timeout=30) == -signal.SIGKILL
    time.sleep(0.5)  # the command had time to see its client go and be killed
    size = marker.stat().st_size
    time.sleep(0.5)
    assert marker.stat().st_size == size, "the command outlived its killed stand-in"


def test_options_and_startup_variables_it_cannot_honour_run_the_real_interpreter(warm_python):
    code = "import sys, os; print(sys.flags.isolated, os.environ.get('LC_ALL'), sys.stdout.encoding)"
    for args, env in ((["-I", "-c", code], {}), (["-c", code], {"LC_ALL": "C"}),
                      (["-c", code], {"PYTHONIOENCODING": "latin-1"})):
        same(*both(warm_python, args, env={**QUICK, **env}))


def _report(queue):
    queue.put(("spawned", os.getppid() != os.getpid()))


def test_multiprocessing_spawn_through_the_stand_in(warm_python, monkeypatch):
    """DDP tests start their ranks this way (multiprocessing's spawn with the stand-in as
    executable): the descriptors spawn passes by number and the process sentinel work."""
    from multiprocessing import resource_tracker

    # the tracker lives as long as this process: a real interpreter, not a warm command
    # the warm server would wait for at the end of the session
    resource_tracker.ensure_running()
    monkeypatch.setenv(QUICK_EXIT, "1")  # inherited by the children
    context = multiprocessing.get_context("spawn")
    before = multiprocessing.spawn.get_executable()
    multiprocessing.set_executable(warm_python)
    try:
        queue = context.Queue()
        child = context.Process(target=_report, args=(queue,))
        child.start()
        assert queue.get(timeout=60) == ("spawned", True)
        child.join(60)
        assert child.exitcode == 0
        failing = context.Process(target=sys.exit, args=(5,))
        failing.start()
        failing.join(60)
        assert failing.exitcode == 5
    finally:
        multiprocessing.set_executable(before)


def test_the_warm_interpreter_ends_with_the_process_that_started_it():
    """A test process that dies (a crash, a kill) leaves no warm interpreter behind."""
    code = ("import os, sys; sys.path.insert(0, sys.argv[1]); from tests.warm import WarmPython\n"
            "from pathlib import Path\n"
            "warm = WarmPython(Path(sys.argv[2]))\n"
            "print(warm.server.pid, flush=True); os._exit(0)")
    root = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory(prefix="warm") as folder:  # a short socket path
        done = subprocess.run([sys.executable, "-c", code, root, folder], capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    server = int(done.stdout.split()[0])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{server}").exists() and time.monotonic() < deadline:
        try:  # a zombie until init reaps it: gone as far as work is concerned
            if Path(f"/proc/{server}/stat").read_text().split(") ")[1].startswith("Z"):
                break
        except OSError:
            break
        time.sleep(0.1)
    else:
        assert not Path(f"/proc/{server}").exists(), "the warm interpreter outlived its parent"
