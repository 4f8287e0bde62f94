"""When bench joins a distributed job, how many local ranks it may start, what a stop
signal during --ddp exits with, and which rank a failed run names. In-process: no rank is
started here (the real launches are in test_ddp_cpu.py)."""

import json
import os
import re
import signal
from types import SimpleNamespace

import pytest

from cnnscope.benchmark import ddp, launcher_env
from cnnscope.errors import InvalidOptionError, Stopped

STALE = {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
TORCHRUN = {**STALE, "TORCHELASTIC_RUN_ID": "abc", "LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "0"}

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@pytest.mark.parametrize("env, joins", [
    ({}, False),
    (STALE, False),  # a PyTorchJob's or an old shell's variables: not a launcher
    ({**STALE, "RANK": "3"}, False),
    ({**STALE, "LOCAL_WORLD_SIZE": "2"}, False),
    ({**STALE, "TORCHELASTIC_RUN_ID": "x"}, False),
    (TORCHRUN, True),
    ({**TORCHRUN, "MASTER_PORT": ""}, False),
])
def test_only_a_launcher_that_started_this_process_makes_bench_join(env, joins):
    assert launcher_env.launched_by_torchrun(env) is joins
    assert ddp.in_torchrun(env) is joins


def test_a_plain_bench_with_stale_variables_never_reaches_a_rendezvous(run, tmp_path, monkeypatch):
    """The issue's case: it used to block in the rendezvous (Ctrl-C ignored for 110 s)."""
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    for key, value in {**STALE, "RANK": "3"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)

    def never(*args, **kwargs):
        raise AssertionError("joined a rendezvous")

    monkeypatch.setattr(ddp, "run_rank", never)
    monkeypatch.setattr(ddp, "launch", never)
    result = run("bench", "lenet5", "--device", "cpu", "--iters", "1", "--warmup", "0",
                 "--max-warmup", "0", "--no-ceiling", "--no-progress", "--format", "json",
                 "--threads", "1")  # bench's default, one per core, mostly spins when busy
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"][0]["status"] == "ok"


@pytest.mark.parametrize("change, said", [
    ({"RANK": "3"}, "RANK=3 WORLD_SIZE=2: a rank must be below the world size"),
    ({"RANK": "-1"}, "a rank must be below the world size"),
    ({"WORLD_SIZE": "0"}, "a rank must be below the world size"),
    ({"RANK": "one"}, "RANK='one' is not an integer"),
    ({"LOCAL_RANK": "2"}, "LOCAL_RANK=2 LOCAL_WORLD_SIZE=2 do not fit"),
    ({"LOCAL_WORLD_SIZE": "3"}, "do not fit WORLD_SIZE=2"),
    ({"MASTER_PORT": "70000"}, "MASTER_PORT=70000 is not a port"),
])
def test_a_joined_jobs_variables_are_checked_before_any_rendezvous(change, said):
    with pytest.raises(InvalidOptionError, match=said):
        launcher_env.check_job_env({**TORCHRUN, **change})


@settings(max_examples=100, deadline=None)
@given(rank=st.integers(-5, 70), world=st.integers(-2, 64))
def test_property_a_rank_is_accepted_exactly_below_the_world_size(rank, world):
    env = {**TORCHRUN, "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_WORLD_SIZE": "1"}
    if 0 <= rank < world:
        assert launcher_env.check_job_env(env) == (rank, world)
    else:
        with pytest.raises(InvalidOptionError):
            launcher_env.check_job_env(env)


def test_joining_checks_the_variables_first(monkeypatch):
    monkeypatch.setattr(os, "environ", {**TORCHRUN, "RANK": "5"})
    monkeypatch.setattr(ddp, "run_rank", lambda *a: pytest.fail("rendezvous with a bad rank"))
    job = ddp.DdpJob(names=("lenet5",), kwargs=({},), batches=(1,), dtypes=("fp32",),
                     modes=("train",), settings=None, options=ddp.DdpOptions(nproc=None))
    with pytest.raises(InvalidOptionError, match="a rank must be below the world size"):
        ddp.run(job, None, None)


GiB = 2**30


@pytest.mark.parametrize("nproc, cores, available, model, said", [
    # at most 4 ranks share a core: 16 cores hold 64 ranks, 2 hold 8
    (1000, 16, 1000 * GiB, 0, "--ddp 1000 would put more than 4 ranks on each of this machine's 16"),
    (9, 2, 100 * GiB, 0, "(use --ddp 8 or fewer)"),
    # 8 ranks of (0.5 GiB + 1.5 GiB) = 16 GiB needed, 10 GiB available: 5 fit.
    (8, 64, 10 * GiB, 3 * GiB // 2, "--ddp 8 needs about 16.0 GiB (8 ranks of 2.00 GiB); 10.0 GiB"),
    (8, 64, 10 * GiB, 3 * GiB // 2, "use --ddp 5 or fewer"),
    (2, 64, GiB // 4, 0, "free some memory"),
])
def test_ddp_is_bounded_by_cores_and_memory(nproc, cores, available, model, said):
    with pytest.raises(InvalidOptionError) as err:
        launcher_env.check_capacity(nproc, model, cores=cores, available=available)
    assert said in str(err.value)


def test_what_the_machine_holds_passes():
    launcher_env.check_capacity(2, 10**6, cores=2, available=2 * GiB)
    launcher_env.check_capacity(2, 0, cores=2, available=None)  # memory unknown: cores only
    launcher_env.check_capacity(2, 0, cores=1, available=2 * GiB)  # a 1-core CI runner: shared
    launcher_env.check_capacity(8, 0, cores=2, available=8 * GiB)


def test_ddp_1000_on_the_command_line_is_one_line_before_any_rank(run, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(launcher_env, "usable_cores", lambda: 4)
    import torch.distributed.launcher.api as launcher_api

    monkeypatch.setattr(launcher_api, "elastic_launch", lambda *a, **k: pytest.fail("launched"))
    result = run("bench", "lenet5", "--ddp", "1000", "--device", "cpu", "--no-ceiling", "--no-progress")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == ("cnnscope: error: --ddp 1000 would put more than 4 ranks on "
                                     "each of this machine's 4 usable core(s) (use --ddp 16 or fewer)")


@pytest.mark.parametrize("signum, code, line", [
    (signal.SIGINT, 130, "cnnscope: interrupted"),
    (signal.SIGTERM, 143, "cnnscope: interrupted (SIGTERM)"),
    (signal.SIGHUP, 129, "cnnscope: interrupted (SIGHUP)"),
])
def test_a_stop_signal_the_launcher_caught_exits_128_plus_its_number(run, tmp_path, monkeypatch,
                                                                     signum, code, line):
    """torch's launcher turns SIGINT/SIGTERM/SIGHUP into SignalException (after stopping
    its ranks); that used to read "model code raised KeyboardInterrupt", exit 2."""
    from torch.distributed.elastic.multiprocessing.api import SignalException

    import torch.distributed.launcher.api as launcher_api

    def launched(config, entry):
        def go(*args):
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # as torch's agent does
                signal.signal(sig, lambda *a: None)
            raise SignalException(f"Process got signal: {signum}", sigval=signal.Signals(signum))
        return go

    monkeypatch.setattr(launcher_api, "elastic_launch", launched)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    result = run("bench", "lenet5", "--ddp", "2", "--device", "cpu", "--no-ceiling", "--no-progress")
    assert result.exit_code == code and result.stdout == ""
    assert result.stderr.strip() == line
    # The launcher's handlers are gone: a later signal is not a SignalException traceback.
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(ddp.LOG_PREFIX)]


def test_stopped_is_a_keyboard_interrupt_carrying_the_signal():
    assert isinstance(Stopped(15), KeyboardInterrupt) and Stopped(15).signum == 15


def _failures(**ranks):
    return SimpleNamespace(failures={
        int(r[1:]): SimpleNamespace(message={"message": text}, timestamp=1, error_file=None,
                                    exitcode=1) for r, text in ranks.items()})


PEER_LOST = ("RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:534] Read error "
             "[127.0.0.1]:53426: Connection reset by peer")


def test_the_rank_that_exited_0_early_is_named_not_the_one_that_lost_it(tmp_path):
    """The issue's case: rank 1 called os._exit(0); rank 0 failed reading from it."""
    (tmp_path / "rank0.finished").write_text("")
    line = ddp._failure_line(_failures(r0=PEER_LOST), str(tmp_path), nproc=2)
    assert line.startswith("rank 1 left first: its process ended without an error before its "
                           "work returned")


def test_a_rank_the_launcher_did_not_report_is_given_no_exit_code(tmp_path):
    """The launcher reports only the first failed process it polls, and a rank that ends
    with code 0 is no failure to it. Rank 1 may have ended with os._exit(7) within the
    same 0.2 s poll as rank 0 lost it: what the launcher hands over is then the same as
    after os._exit(0), so the line must not say which code rank 1 ended with."""
    (tmp_path / "rank0.finished").write_text("")
    line = ddp._failure_line(_failures(r0=PEER_LOST), str(tmp_path), nproc=2)
    assert "exited" not in line and not re.search(r"code \d", line), line
    # Where the launcher did report the rank that left, its code is named.
    reported = SimpleNamespace(failures={1: SimpleNamespace(message="", timestamp=1,
                                                            error_file=None, exitcode=7)})
    assert ddp._failure_line(reported, str(tmp_path), nproc=2) == "rank 1 exited with code 7"


def test_a_timeout_blames_the_rank_that_timed_out_not_an_unmarked_hanging_rank(tmp_path):
    """A rank that hangs is killed by the agent after its peer timed out: unmarked, like
    one that called os._exit(0), but its peer's error is a timeout, not a lost connection."""
    (tmp_path / "rank0.finished").write_text("")
    timeout = "RuntimeError: [gloo/transport/tcp/pair.cc:446] Timed out waiting 8000ms"
    line = ddp._failure_line(_failures(r0=timeout), str(tmp_path), nproc=2)
    assert line == f"rank 0 failed: {timeout}"


def test_a_ranks_own_error_is_still_named_before_an_early_exit(tmp_path):
    line = ddp._failure_line(_failures(r0="RuntimeError: rank zero broke"), str(tmp_path), nproc=2)
    assert line == "rank 0 failed: RuntimeError: rank zero broke"


def test_every_rank_finished_names_the_failed_one(tmp_path):
    for r in range(3):
        (tmp_path / f"rank{r}.finished").write_text("")
    line = ddp._failure_line(_failures(r2="ValueError: bad"), str(tmp_path), nproc=3)
    assert line == "rank 2 failed: ValueError: bad"


def test_a_successful_run_removes_failed_runs_log_folders_and_only_those(tmp_path):
    failed = tmp_path / (ddp.LOG_PREFIX + "old")
    failed.mkdir()
    ddp._mark_failed(str(failed))
    unmarked = tmp_path / (ddp.LOG_PREFIX + "running")  # another run's, still in use
    unmarked.mkdir()
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / ddp.FAILED_MARK).write_text("")
    planted = tmp_path / (ddp.LOG_PREFIX + "link")
    planted.symlink_to(other)
    ddp._remove_failed_logs(str(tmp_path))
    assert not failed.exists()
    assert unmarked.is_dir() and (other / ddp.FAILED_MARK).exists() and planted.is_symlink()


@pytest.mark.parametrize("world, cores, shared", [(2, 1, True), (2, 2, False), (4, 2, True)])
def test_ranks_sharing_cores_are_said_under_the_table(world, cores, shared):
    from cnnscope.benchmark.records import DdpResult
    from cnnscope.report import ddp_render

    env = {"device": "cpu", "device_name": "CPU", "torch": "x",
           "ddp": {"world_size": world, "backend": "gloo", "bucket_cap_mb": None,
                   "threads_per_rank": 1, "usable_cores": cores}}
    lines = ddp_render.own_lines(DdpResult(env=env, settings={}, rows=[], planned=0))
    said = [line for line in lines if "ranks share" in line]
    assert said == ([f"! {world} ranks share {cores} usable core(s): each rank waits for the "
                     "others' time slices, so step ms and eff. are this machine's, not those "
                     "of separate devices"] if shared else [])
