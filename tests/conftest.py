"""Fixtures shared by the whole suite.

- ``run``: the CLI called in-process (typer's CliRunner), stdout and stderr apart. A
  fresh interpreter costs an ``import torch`` each; tests that need real process
  behaviour (signals, closed or full stdout, fd-level redirects, rlimits) start one
  themselves.
- ``run_main``: ``cnnscope.cli.main.main(argv)`` in-process (the function the entry point
  calls; it returns the exit code), with what it wrote to stdout and stderr.
- ``one_line_error``: the contract for bad input: exit code 2 (or the one given), one
  line on stderr starting ``cnnscope: error:``, no traceback. Takes a CliRunner result
  or a ``subprocess.CompletedProcess``; returns the line.
- ``write_file``: a dedented source file in the test's tmp_path (user models, packages).
- one intra-op thread for the tests' own torch work (autouse, session): the ops here are
  small, and on a busy 2-core machine a second OpenMP worker mostly spins waiting for
  the first. ``tests/analysis`` + ``tests/trace`` cost 85 CPU s with torch's default (2
  threads here) and 25 s with one, same tests, same results (``/usr/bin/time``, load ~3).
  Processes the tests start (CLI, DDP ranks) keep their own thread policy.
- the default run is parallel: where pytest-xdist is installed and no ``-n`` is given,
  ``-n auto --dist loadfile`` (pytest_cmdline_main below). ``auto`` is one worker per core
  this process may use (``taskset`` and cgroup affinity count), at most 4, and none on one
  core: there the tests run in this process, as without xdist, rather than paying a
  worker's start-up and collection (~8 CPU s) for nothing. ``loadfile`` runs each test
  file on one worker, in file order: its module-scoped fixtures (traces, locks) are paid
  once, and a docs page's console blocks run in page order in their shared folder. The
  longest files are given out first (``LONGEST_FILES``), so the run ends on small ones.
  Not in pyproject's addopts: an environment without xdist (the extended one, a GPU
  machine's) would then refuse every pytest command line.
- the garbage collector, for the suite's own process(es): it waits during collection
  (``pytest_collection``) and stays out of a worker's teardown (``pytest_sessionfinish``);
  while tests run it works as in any program, so cnnscope's own handling of it is what
  runs under test.
- ``warm_python``: a stand-in for ``sys.executable`` whose commands are forks of one
  interpreter that imported torch once (``tests/warm.py``): real processes (signals,
  file descriptors, rlimits, exit codes) without ~1.5 CPU s of start-up each. Tests of
  the start-up itself keep ``sys.executable``.
- ``zoo_report``: ``cnnscope.analyze`` memoised for the session, so each zoo model is
  traced once per run whatever the number of files that ask for it. Reports are frozen
  dataclasses: sharing one cannot leak a change from one test into another.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from types import SimpleNamespace

import pytest


# Past 4 workers each new one mostly repeats start-up (import torch, collection: ~8 CPU s)
# and the session's traces; the longest single tests bound the wall time anyway.
MAX_AUTO_WORKERS = 4


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which turns "auto" into a count
def pytest_cmdline_main(config):
    option = config.option
    if hasattr(config, "workerinput"):  # a worker: the controller has decided already
        return
    if config.pluginmanager.hasplugin("xdist") and getattr(option, "numprocesses", 0) is None:
        option.numprocesses = "auto"
        if option.dist == "no":
            option.dist = "loadfile"
            # Files go out in the order pytest_collection_modifyitems gives, not re-sorted
            # by their number of tests (xdist's default for loadfile).
            option.loadscopereorder = False


# The files that take longest (wall seconds on the 2-core machine, two workers), longest
# first. A worker takes a whole file at a time, in collection order, so the run ends when
# the last file given out ends: with these given out first, the end of the run is made of
# small files that even the workers out. Ordered by their number of tests instead (xdist's
# default), the DDP launches started at ~40 s of 60 and one worker idled up to 2 s at the
# end. A path that no longer exists fails tests/test_suite_setup.py.
LONGEST_FILES = (
    "tests/bench/test_ddp_cpu.py",  # ~18 s: DDP launches, two ranks each
    "tests/docs/test_console_examples.py",  # ~9 s
    "tests/test_warm.py",  # ~8 s: interpreters started and compared
    "tests/analysis/test_memory.py",  # ~7 s: the CPU allocator measured
    "tests/bench/test_bench_vs_timm.py",  # ~6.5 s: the GPU-session script on the CPU
    "tests/cli/test_safety_output.py",  # ~5 s: the CLI as a process
    "tests/bench/test_runner_cpu.py",
    "tests/trace/test_leaf_memo.py",
    "tests/trace/test_exact_meta_kernels.py",  # ~2.5 s: PyTorch's decompositions swept
    "tests/zoo/test_all_models.py",
    "tests/cli/test_safety_plots.py",
    "tests/trace/test_op_table.py",
    "tests/cli/test_tables_80.py",
    "tests/zoo/test_senet.py",
    "tests/docs/test_mkdocs_build.py",  # ~1.6 s in two tests
    "tests/test_zoo_gate.py",  # ~1.2 s in one test
    "tests/test_zoo_report_fresh.py",  # ~1 s in one test
)


def pytest_collection_modifyitems(items):
    """Whole files in the order above, then the rest by number of tests, most first; the
    tests of a file keep their order (a docs page's console blocks share a folder)."""
    def file_of(item):
        return item.nodeid.split("::", 1)[0]

    counts: dict[str, int] = {}
    for item in items:
        counts[file_of(item)] = counts.get(file_of(item), 0) + 1
    rank = {path: i for i, path in enumerate(LONGEST_FILES)}
    order = sorted(counts, key=lambda path: (rank.get(path, len(rank)), -counts[path]))
    position = {path: i for i, path in enumerate(order)}
    items.sort(key=lambda item: position[file_of(item)])  # stable: a file's own order kept


# A worker imports readline (through pdb) before any test, and readline exports COLUMNS=80
# and LINES=24 for its stdin pipe: tables in the worker would be cut at 80 columns where the
# same test, run serially, gets the width of captured output (160). Each worker gets the
# controller's values back (unset where it had none).
TERMINAL_VARIABLES = ("COLUMNS", "LINES")


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown where xdist is not installed
def pytest_configure_node(node):
    node.workerinput["terminal_env"] = {k: os.environ.get(k) for k in TERMINAL_VARIABLES}


def pytest_configure(config):
    for name, value in getattr(config, "workerinput", {}).get("terminal_env", {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = min(cores or 1, MAX_AUTO_WORKERS)
    return 0 if cores == 1 else cores


# Collection imports every test module and rewrites its asserts: some 300,000 objects that
# live as long as the process, and the AST garbage of the rewriting. The collector would
# run ~17 full collections over them meanwhile (~1.2 CPU s a process, on the critical path
# of every run); instead it waits, and what collection made goes to the oldest generation
# unscanned, as cnnscope does after a trace (cnnscope.trace.meta.paused_gc).
@pytest.hookimpl(wrapper=True)
def pytest_collection(session):
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return (yield)
    finally:
        if was_enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


# A worker's last act is its interpreter's teardown, with up to ~1.2 million objects alive
# (torch, the session's traces): pytest's final collection at unconfigure and the
# interpreter's own collections at exit scan them all, ~3 CPU s a worker, while the run
# waits for it. On a worker nothing after its session can reach the user (a warning from
# that final collection is not sent to the controller: tried with a failing __del__), so
# the objects are frozen out of the collector's reach. Serially the collection is kept.
@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    if hasattr(session.config, "workerinput"):
        import gc

        gc.freeze()


def _invoke(*args, **kwargs):
    from unittest import mock

    from typer import testing

    from cnnscope.cli.main import app, command

    # typer's CliRunner builds the Click command from the app on every invoke (~8 ms,
    # some 400 times a run); cnnscope.cli.main.command() is that same build, made once.
    build = testing._get_command
    with mock.patch.object(testing, "_get_command",
                           lambda given: command() if given is app else build(given)):
        return testing.CliRunner().invoke(app, [str(a) for a in args], **kwargs)


def _one_line_error(result, code: int = 2) -> str:
    if isinstance(result, subprocess.CompletedProcess):
        got, stderr, output = result.returncode, result.stderr, (result.stdout or "") + result.stderr
    else:
        got, stderr, output = result.exit_code, result.stderr, result.output
    assert got == code, output
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnscope: error:"), stderr
    assert "Traceback" not in output
    return lines[0]


@pytest.fixture(scope="session")
def run():
    """``run("params", "lenet5", "-f", "json")`` -> click Result (exit_code, stdout, stderr)."""
    return _invoke


@pytest.fixture
def run_main(capsys):
    """``run_main("params", "lenet5")`` -> exit_code, stdout, stderr, output (both)."""
    from cnnscope.cli.main import main

    def call(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return SimpleNamespace(exit_code=code, stdout=out, stderr=err, output=out + err)

    return call


@pytest.fixture(scope="session")
def one_line_error():
    return _one_line_error


@pytest.fixture
def write_file(tmp_path):
    """``write_file("net.py", source)`` -> the path of the dedented file in tmp_path."""

    def write(name: str, body: str):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
        return path

    return write


@pytest.fixture(scope="session")
def warm_python():
    """The path of an interpreter that runs each command in a fork of one warm process
    (``tests/warm.py``): a real process, without ``import torch`` at its start. Use it in
    place of ``sys.executable`` where the command, not the interpreter's start-up, is
    under test. Started on first use, once per worker."""
    from tests.warm import warm_python as start

    with start() as warm:
        yield warm.executable


_REPORTS: dict = {}


@pytest.fixture(scope="session")
def zoo_report():
    """``zoo_report("resnet50")`` (same arguments as ``cnnscope.analyze``), traced once
    per session."""
    import cnnscope

    def get(name: str, *args, **kwargs):
        key = (name, args, tuple(sorted(kwargs.items())))
        if key not in _REPORTS:
            _REPORTS[key] = cnnscope.analyze(name, *args, **kwargs)
        return _REPORTS[key]

    return get


@pytest.fixture(scope="session", autouse=True)
def private_caches(tmp_path_factory):
    """bench's ceiling and bandwidth caches, and matplotlib's, in a folder of the run's own,
    for every test and every process a test starts (they inherit the environment): a test
    never reads a ceiling a user measured, nor writes into the user's ~/.cache. Tests of
    the cache rules point CNNSCOPE_CACHE_DIR elsewhere themselves."""
    root = tmp_path_factory.mktemp("caches")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNSCOPE_CACHE_DIR", str(root / "cnnscope"))
        mp.setenv("MPLCONFIGDIR", str(root / "matplotlib"))
        yield root


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# What a fresh interpreter imports, asked once: four files each started their own process
# for this (an `import torch` and a start-up each, ~2-3 CPU s). The questions are asked in
# one process in an order where each one's answer is still its own: a module, once
# imported, stays in sys.modules, so a stray import by an earlier step can only make a
# later "not imported" check fail, never pass. Hence "no torch" first, then one CLI
# command's imports, then tracing's.
IMPORT_CHECKS = r"""
import json, sys

def families():
    return sorted(m for m in sys.modules
                  if m.startswith('cnnscope.zoo.') and not m.startswith('cnnscope.zoo._'))

seen = {}
import cnnscope, cnnscope.cli.main
seen['api_and_cli_import_torch'] = 'torch' in sys.modules
import cnnscope.report.ddp_render, cnnscope.benchmark.comm_model, cnnscope.benchmark.records
seen['ddp_renderers_and_records_import_torch'] = 'torch' in sys.modules
sys.argv = ['cnnscope', 'params', 'resnet18', '--format', 'json', '-o', '/dev/null']
try:
    cnnscope.cli.main.app()
except SystemExit:
    pass
heavy = ['pandas', 'fvcore', 'matplotlib', 'torch._dynamo', 'sympy']
seen['params_heavy'] = sorted(x for x in heavy if x in sys.modules)
seen['params_families'] = families()
# Tracing: these models reach every op whose PyTorch meta kernel would import
# torch._dynamo or sympy (see tests/trace/test_meta_fast_path.py).
for n in ['lenet5', 'alexnet', 'highway', 'capsnet', 'hrnetv2_w18',
          'residual_attention_56', 'unet']:
    cnnscope.analyze(n)
seen['tracing_dynamo_sympy'] = sorted(m for m in ('torch._dynamo', 'sympy') if m in sys.modules)
# The backward pass (autograd itself imports sympy; torch._dynamo is the meta kernels').
cnnscope.analyze('resnet18', train=True)
cnnscope.analyze('mobilenet_v2', train=True)
seen['train_dynamo'] = sorted(m for m in ('torch._dynamo',) if m in sys.modules)
print(json.dumps(seen))
"""


def once_per_run(tmp_path_factory, name: str, compute):
    """``compute()`` (a JSON value) once for the whole run, whatever the number of xdist
    workers that ask: the first one computes it under a lock in the run's shared folder
    and the others read its file. Serially, it is just ``compute()``."""
    import fcntl
    import json

    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # the same in every worker of one run
    if not run:
        return compute()
    shared = tmp_path_factory.getbasetemp().parent  # above each worker's own folder
    path = shared / f"{name}-{run}.json"  # a --basetemp kept from an earlier run cannot answer
    with open(shared / f"{name}-{run}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            path.write_text(json.dumps(compute()))
        return json.loads(path.read_text())


@pytest.fixture(scope="session")
def import_checks(tmp_path_factory):
    """What one fresh interpreter imported at each step of IMPORT_CHECKS, by the step's key
    (asked once per run: four files on any worker use it)."""
    import json
    import sys

    def ask():
        done = subprocess.run([sys.executable, "-c", IMPORT_CHECKS], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    return once_per_run(tmp_path_factory, "import_checks", ask)
