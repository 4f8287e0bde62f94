"""Real processes without a fresh interpreter's start-up: forks of one warm interpreter.

A test that needs cnnscope in a process of its own (a signal, a closed or full stdout, a
terminal, an rlimit, a DDP rank) pays ~1.05 CPU s of start-up (``import torch``) before
its command starts. ``WarmPython`` imports torch once and forks a child per command. Its
``executable`` is a small client that stands in for ``sys.executable``: it hands its
argv, working folder, environment, signal dispositions and mask, umask, rlimits, CPU
affinity and every open file descriptor (0, 1, 2 and any other it inherited, at the same
numbers: multiprocessing's spawn passes two) to the warm interpreter over a Unix socket
(in a private temporary folder), forwards the signals it receives to the command, and
ends as the command ended: the same exit code, or killed by the same signal. The
command's process is real (its own pid, file descriptors, signal handlers, rlimits,
children) and ends with the interpreter's own exit (teardown included, unless
``QUICK_EXIT``); what it skips is the interpreter's start-up and ``import torch``. The
warm interpreter ends with the test process that started it.

Where a fork would not be the same as a fresh start, the client runs the real interpreter
instead (``os.execv``), so a test cannot pass through the warm path that would fail
through the real one:

- an interpreter option other than ``-u`` and ``-B`` (``-I``, ``-X ...``, ``-W ...``);
- a start-up variable that differs from the warm interpreter's own (``PYTHON...`` except
  ``PYTHONPATH``, which is applied, and a plain ``PYTHON``, which scripts use for a path;
  ``LANG``, ``LC_*``; the thread-pool variables torch and OpenMP read at import:
  ``OMP_*``, ``MKL_*``, ``KMP_*``, ``OPENBLAS_*``; ``TORCH_*``, ``PYTORCH_*``, ``CUDA_*``,
  ``LD_*``, and oneDNN's ``ONEDNN_*``/``DNNL_*``, read once per process).

A warm interpreter dedicated to one kind of command may also ``preload`` torch's own
modules that each of its commands imports anyway (``TRAINING_IMPORTS``: torch._dynamo and
sympy, which a real training step imports on first use, ~0.8 CPU s a process). A fork then starts with them imported, as a command is after its first
training step; the one difference a command can see is that cnnscope's ``dynamo-cache``
patch, made only while torch._dynamo is not loaded, is not made. So only the DDP ranks'
and the GPU-session plumbing's interpreters preload; the session's shared one does not.

Tests whose subject is the start-up itself (what a fresh ``import cnnscope`` imports,
``python -m cnnscope --version`` without torch, the encoding chosen at start-up) keep
``sys.executable``. The warm interpreter imports torch and nothing of cnnscope, so a
check that some cnnscope module is *not* imported means the same in a fork.

Cost accounting stays honest: every command's CPU time is its supervisor's children's,
then the warm interpreter's, then the test process's, as for a subprocess of the test.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

# The signals the client passes on to the command (a test's Ctrl-C, a launcher's SIGTERM,
# a terminal's resize). SIGKILL cannot be caught: the supervisor sees the client's socket
# close and kills the command with it, so a command never outlives its client.
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH",
             "SIGALRM", "SIGCONT")
STARTUP_PREFIXES = ("PYTHON", "LC_", "OMP_", "MKL_", "KMP_", "OPENBLAS_", "TORCH_", "PYTORCH_",
                    "CUDA_", "LD_", "ONEDNN_", "DNNL_")
STARTUP_NAMES = ("LANG", "LANGUAGE")
APPLIED = ("PYTHONPATH",)  # differs freely: the command's sys.path is rebuilt from it
# Set to "1" in a command's environment, its sys.executable (and multiprocessing's spawn
# executable) is the stand-in: the Python processes it starts (DDP ranks, torchrun's
# workers) are warm forks too. Off by default: a command sees the real interpreter's path.
FOR_CHILDREN = "WARM_PYTHON_FOR_CHILDREN"
# Set to "1", a command that ends normally skips the interpreter's teardown of modules and
# their objects (~0.45 CPU s with torch imported): non-daemon threads are joined, atexit
# runs and the standard streams are flushed, then the process ends. For commands whose
# exit is not what is tested (a script's plumbing); off by default, as the teardown's
# time and destructors are part of how a real process ends.
QUICK_EXIT = "WARM_PYTHON_QUICK_EXIT"
# torch's modules a real training step imports on first use (torch.optim's Optimizer
# imports torch._dynamo; autograd's gradient checks import symbolic_shapes, and sympy with
# it): what a dedicated warm interpreter may preload (see above).
TRAINING_IMPORTS = ("torch._dynamo", "torch.fx.experimental.symbolic_shapes")


def startup_environment(env) -> dict[str, str]:
    """The variables a fresh interpreter (and ``import torch``) reads before any command."""
    return {k: v for k, v in env.items() if k not in APPLIED
            and (k in STARTUP_NAMES or k.startswith(STARTUP_PREFIXES) and k not in STARTUP_PREFIXES)}


SERVER = r'''
import atexit, fcntl, io, json, os, resource, runpy, select, signal, socket, struct, sys
import tempfile, threading, types
import torch  # noqa: F401 - the point: imported once, before the forks
for name in PRELOAD:  # what every command of this server would import anyway
    __import__(name)

SIGNALS = [getattr(signal, name) for name in FORWARDED]
listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
listener.listen(16)
own_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
BASE_PATH = [p for p in sys.path[1:] if p not in own_path]  # without -c's '' entry
STREAMS = {name: (getattr(sys, name).encoding, getattr(sys, name).errors)
           for name in ("stdin", "stdout", "stderr")}


class Stop(Exception):
    pass


def stop(*_):
    raise Stop


signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)


def receive(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            os._exit(0)  # the client went away before its command started
        data += chunk
    return data


def place_descriptors(received, targets):
    """Only the client's descriptors, at the client's numbers, as a fresh exec has."""
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 1000) for fd in received]  # out of the way
    keep = set(high)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    for fd, target in zip(high, targets):
        os.dup2(fd, target, inheritable=True)
    for fd in high:
        if fd not in targets:
            os.close(fd)


def stream(fd, name, unbuffered):
    """sys.std* as CPython's create_stdio builds them for this descriptor."""
    encoding, errors = STREAMS[name]
    try:
        os.fstat(fd)
    except OSError:  # closed: CPython's sys.std* is then None
        return None
    raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
    raw.name = "<%s>" % name
    tty = raw.isatty()
    if fd == 0:
        return io.TextIOWrapper(io.BufferedReader(raw), encoding, errors, "\n",
                                write_through=unbuffered)
    buffer = raw if unbuffered else io.BufferedWriter(raw)
    return io.TextIOWrapper(buffer, encoding, errors, "\n", line_buffering=not unbuffered and (tty or fd == 2),
                            write_through=unbuffered)


def uncaught():
    """The traceback a fresh interpreter prints: without this file's own frame."""
    kind, value, tb = sys.exc_info()
    while tb is not None and tb.tb_frame.f_code is run_command.__code__:
        tb = tb.tb_next
    sys.excepthook(kind, value.with_traceback(tb), tb)  # the hook prints value's own


def run_command(request):
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # computed again from this command's TMPDIR
    if os.environ.get(FOR_CHILDREN) == "1":  # the command's own Python children are warm too
        import multiprocessing.spawn
        sys.executable = request["client"]
        multiprocessing.spawn.set_executable(request["client"])
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN if sig in request["ignored"] else
                      signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, request["blocked"])
    os.umask(request["umask"])
    os.sched_setaffinity(0, request["cpus"])
    for name, limit in request["limits"].items():
        if resource.getrlimit(getattr(resource, name)) != tuple(limit):
            resource.setrlimit(getattr(resource, name), tuple(limit))
    flags = request["flags"]
    unbuffered = "-u" in flags or bool(os.environ.get("PYTHONUNBUFFERED"))
    if "-B" in flags:
        sys.dont_write_bytecode = True
    sys.stdin = sys.__stdin__ = stream(0, "stdin", unbuffered)
    sys.stdout = sys.__stdout__ = stream(1, "stdout", unbuffered)
    sys.stderr = sys.__stderr__ = stream(2, "stderr", unbuffered)
    argv = request["argv"]
    sys.orig_argv = [sys.executable, *flags, *argv]
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if argv[0] == "-m":
        head = os.getcwd()
    elif argv[0] in ("-c", "-"):
        head = ""
    else:
        head = os.path.dirname(os.path.realpath(argv[0]))
    sys.path[:] = [head] + extra + [p for p in BASE_PATH if p not in extra]
    interrupted = False
    try:
        if argv[0] == "-m":
            sys.argv = ["-m", *argv[2:]]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            main = types.ModuleType("__main__")
            sys.modules["__main__"] = main
            if argv[0] in ("-c", "-"):
                code = argv[1] if argv[0] == "-c" else sys.stdin.read()
                sys.argv = [argv[0], *argv[2 if argv[0] == "-c" else 1:]]
                exec(compile(code, "<string>" if argv[0] == "-c" else "<stdin>", "exec"),
                     main.__dict__)
            else:
                sys.argv = argv
                runpy.run_path(argv[0], run_name="__main__")
        status = 0
    except SystemExit as exit_:
        code = exit_.code
        status = code if isinstance(code, int) else 0 if code is None else 1
        if not isinstance(code, (int, type(None))):
            print(code, file=sys.stderr)
    except KeyboardInterrupt:
        uncaught()
        status, interrupted = 1, True
    except BaseException:
        uncaught()
        status = 1
    if interrupted or os.environ.get(QUICK_EXIT) == "1":
        threading._shutdown()
        atexit._run_exitfuncs()
        for out in (sys.stdout, sys.stderr):
            try:
                if out is not None:
                    out.flush()
            except Exception:  # noqa: BLE001 - as CPython: exit status 120
                status = 120
        if interrupted:  # an uncaught KeyboardInterrupt ends the process by SIGINT
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(status & 0xFF)
    # The interpreter's own exit from here (this is the server's top level): non-daemon
    # threads joined, atexit run, streams flushed (status 120 if that fails), modules and
    # their objects torn down, as at the end of a fresh process. A DDP rank that skipped
    # the teardown would end sooner than a real one and change which rank its launcher
    # sees fail first.
    raise SystemExit(status)


def supervise(conn):
    """Start the command, pass it the client's signals, report how it ended. Returns the
    request in the command's process only (the supervisor ends here)."""
    _, received, _, _ = socket.recv_fds(conn, 1, 256)
    size = struct.unpack("!I", receive(conn, 4))[0]
    request = json.loads(receive(conn, size))
    worker = os.fork()
    if worker == 0:
        try:
            conn.close()
            for own in (sys.stdin, sys.stdout, sys.stderr):  # the server's: closed now, so
                own.close()  # their collection at exit cannot close the command's 0, 1, 2
            place_descriptors(received, request["fds"])
        except BaseException:
            os._exit(70)
        return request
    for fd in received:
        os.close(fd)
    # the command's end as a readable descriptor (Linux 5.3); else a poll every 20 ms
    done = os.pidfd_open(worker) if hasattr(os, "pidfd_open") else None
    watched = [conn] if done is None else [conn, done]
    status = None
    while status is None:
        ready, _, _ = select.select(watched, [], [], 0.02 if done is None else None)
        if done is None or done in ready:
            pid, waited = os.waitpid(worker, os.WNOHANG)
            if pid:
                status = waited
                break
        if conn not in ready:
            continue
        data = conn.recv(64)
        if not data:  # the client is gone (killed): its command goes with it
            os.kill(worker, signal.SIGKILL)
            watched.remove(conn)
        for sig in data:
            try:
                os.kill(worker, sig)
            except ProcessLookupError:
                pass
    ended = ("signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status)
             else "exit %d" % os.WEXITSTATUS(status))
    try:
        conn.sendall(ended.encode())
    except OSError:
        pass
    os._exit(0)


def reap(options):
    """Collect finished supervisors: their CPU time becomes this process's children's."""
    try:
        while os.waitpid(-1, options)[0]:
            pass
    except ChildProcessError:
        pass


command = None
try:
    while True:
        reap(os.WNOHANG)
        # the test process holds the other end of stdin: if it dies, so does this server
        ready, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 1):
            break
        if listener not in ready:
            continue
        conn, _ = listener.accept()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            listener.close()
            try:
                command = supervise(conn)  # returns in the command's process only
            except BaseException:
                os._exit(70)
            break
        conn.close()
except Stop:
    pass
if command is None:
    reap(0)
else:
    run_command(command)  # ends the process as the command ends
'''

CLIENT = r'''
import json, os, resource, signal, socket, struct, sys

REAL, SOCKET, STARTUP = {real!r}, {sock!r}, {startup!r}
STARTUP_PREFIXES, STARTUP_NAMES, APPLIED = {prefixes!r}, {names!r}, {applied!r}
FORWARDED = {forwarded!r}


def real():
    os.execv(REAL, [REAL, *sys.argv[1:]])


argv = sys.argv[1:]
flags = []
while argv and argv[0] in ("-u", "-B"):
    flags.append(argv.pop(0))
if not argv or not (argv[0] in ("-c", "-m") and len(argv) > 1 or argv[0] == "-"
                    or not argv[0].startswith("-")):
    real()
{startup_rule}

if startup_environment(os.environ) != STARTUP:
    real()

signals = [getattr(signal, name) for name in FORWARDED]
request = {{"argv": argv, "flags": flags, "cwd": os.getcwd(), "env": dict(os.environ),
           "client": os.path.abspath(sys.argv[0]),
           "ignored": [s for s in signals if signal.getsignal(s) == signal.SIG_IGN],
           "blocked": sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])),
           "umask": os.umask(0o22), "cpus": sorted(os.sched_getaffinity(0)),
           "limits": {{name: resource.getrlimit(getattr(resource, name))
                      for name in dir(resource) if name.startswith("RLIMIT_")}}}}
fds = []
for name in os.listdir("/proc/self/fd"):
    try:
        os.fstat(int(name))
    except OSError:  # the listing's own descriptor, closed by now
        continue
    fds.append(int(name))
request["fds"] = fds
conn = socket.socket(socket.AF_UNIX)
conn.connect(SOCKET)
socket.send_fds(conn, [b"x"], fds)
for fd in fds:  # the command holds them now; the client keeps only its socket
    if fd > 2:
        os.close(fd)
body = json.dumps(request).encode()
conn.sendall(struct.pack("!I", len(body)) + body)
for sig in signals:
    if sig not in request["ignored"]:
        signal.signal(sig, lambda number, frame: conn.send(bytes([number])))
ended = b""
while chunk := conn.recv(64):
    ended += chunk
kind, _, number = ended.decode().partition(" ")
if kind == "signal":  # end as the command ended: killed by the same signal
    signal.signal(int(number), signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [int(number)])
    os.kill(os.getpid(), int(number))
os._exit(int(number) if kind == "exit" else 1)
'''


class WarmPython:
    """A warm interpreter serving commands; ``executable`` stands in for ``sys.executable``."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None,
                 preload: tuple[str, ...] = ()):
        env = dict(os.environ if env is None else env)
        self.folder = Path(folder)
        sock = self.folder / "warm.sock"  # a socket path has at most 107 bytes: keep it short
        code = (f"FORWARDED, FOR_CHILDREN, QUICK_EXIT = {FORWARDED!r}, {FOR_CHILDREN!r}, "
                f"{QUICK_EXIT!r}\nPRELOAD = {tuple(preload)!r}\n" + SERVER)
        self.server = subprocess.Popen([sys.executable, "-c", code, str(sock)], env=env,
                                       cwd=self.folder, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True,
                                       start_new_session=True)
        if self.server.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("the warm interpreter did not start")
        client = self.folder / "python"
        client.write_text(f"#!{sys.executable} -SI\n" + CLIENT.format(
            real=sys.executable, sock=str(sock), startup=startup_environment(env),
            startup_rule=inspect.getsource(startup_environment),  # one rule, both sides
            prefixes=STARTUP_PREFIXES, names=STARTUP_NAMES, applied=APPLIED,
            forwarded=FORWARDED))
        client.chmod(0o755)
        self.executable = str(client)

    def run(self, args, **kwargs) -> subprocess.CompletedProcess:
        """``subprocess.run([self.executable, *args], **kwargs)``."""
        return subprocess.run([self.executable, *args], **kwargs)

    def close(self) -> None:
        self.server.terminate()  # it stops accepting, waits for its commands, then ends
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a command left running: end it all
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait()
        self.server.stdout.close()
        self.server.stdin.close()


@contextlib.contextmanager
def warm_python(env: dict[str, str] | None = None, preload: tuple[str, ...] = ()):
    """A ``WarmPython`` in a short temporary folder of its own, closed on exit."""
    with tempfile.TemporaryDirectory(prefix="warm") as folder:
        warm = WarmPython(Path(folder), env, preload)
        try:
            yield warm
        finally:
            warm.close()
