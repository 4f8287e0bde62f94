"""The runner keeps the CUDA event contract, checked on the CPU.

On a GPU a mark is an event recorded into the stream: it has no time until the GPU has
reached it, and ``Event.elapsed_time`` on an event that has not completed fails
(cudaErrorNotReady). The CPU's ``WallTimer`` has no such rule (its ``sync`` does
nothing), so a runner that read a mark before synchronising would pass every CPU test
and fail on its first GPU. ``StrictTimer`` is the wall clock with the GPU's rule: a mark
can be read only after a ``sync()`` that came after it. Swapped in for the runner's
timer, it makes every CPU row run under the contract the CUDA path needs.

It also counts synchronisations: the timed loop must queue its iterations and
synchronise once at the end (a sync per step would idle the GPU between steps, and the
figure would include the host's launch latency).
"""

from __future__ import annotations

import time

import pytest
import torch

import cnnscope
from cnnscope.api import bench_row
from cnnscope.benchmark import ceiling as ceiling_mod
from cnnscope.benchmark import runner
from cnnscope.benchmark.runner import BenchSettings, Workload
from cnnscope.benchmark.timing import phase_times

from .test_runner_cpu import settings, tiny


class NotReady(RuntimeError):
    """What CUDA says when an event is read before the GPU reached it."""


class Mark:
    def __init__(self, ns: int):
        self.ns = ns
        self.resolved = False


class StrictTimer:
    """Wall-clock timer that enforces the event rule: read a mark only after a sync."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.pending: list[Mark] = []
        self.syncs = 0
        self.marks = 0
        self.reads = 0

    def mark(self) -> Mark:
        self.marks += 1
        mark = Mark(time.perf_counter_ns())
        self.pending.append(mark)
        return mark

    def sync(self) -> None:
        self.syncs += 1
        for mark in self.pending:
            mark.resolved = True
        self.pending.clear()

    def elapsed_ms(self, start: Mark, end: Mark) -> float:
        if not (start.resolved and end.resolved):
            raise NotReady("elapsed_time read before the events completed (no sync after them)")
        self.reads += 1
        return (end.ns - start.ns) / 1e6


@pytest.fixture
def strict(monkeypatch):
    """Every timer the runner and the ceiling make is a StrictTimer; the list holds them."""
    made: list[StrictTimer] = []

    def make(device):
        timer = StrictTimer(device)
        made.append(timer)
        return timer

    monkeypatch.setattr(runner, "timer_for", make)
    monkeypatch.setattr(ceiling_mod, "timer_for", make)
    return made


def test_strict_timer_refuses_an_unsynchronised_read():
    # The check that gives the tests below their teeth.
    timer = StrictTimer()
    a, b = timer.mark(), timer.mark()
    with pytest.raises(NotReady):
        timer.elapsed_ms(a, b)
    timer.sync()
    assert timer.elapsed_ms(a, b) >= 0


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_rows_read_marks_only_after_a_sync(strict, mode):
    row = bench_row(tiny(), 2, "fp32", mode, settings(iters=4))
    # A NotReady inside the row would have made it an "error" row.
    assert row.status == "ok", row.error
    (timer,) = strict
    assert timer.reads > 0 and not timer.pending
    if mode == "train":
        assert row.fwd_median_ms > 0 and row.bwd_median_ms > 0 and row.opt_median_ms > 0


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_per_layer_reads_marks_only_after_a_sync(strict, mode):
    row = bench_row(tiny(), 2, "fp32", mode, settings(iters=3, per_layer=True))
    assert row.status == "ok", row.error
    names = [layer.name for layer in row.per_layer.layers]
    assert "conv2" in names and "conv2#2" in names
    if mode == "train":
        assert row.per_layer.layers[0].bwd_ms is not None


def test_ceiling_reads_marks_only_after_a_sync(strict, tmp_path):
    ceiling_mod.clear_run_cache()
    try:
        c = ceiling_mod.matmul_ceiling("cpu", "fp32", path=tmp_path / "c.json", sizes=(64, 128))
    finally:
        ceiling_mod.clear_run_cache()
    assert c.tflops > 0 and not c.cached
    assert all(not t.pending for t in strict)


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_timed_loop_queues_steps_and_syncs_once(mode):
    n = 6
    source = tiny()
    model = source.build("cpu").train(mode == "train")
    x = torch.randn(2, *source.input_size)
    report = cnnscope.analyze(source, batch=2, train=mode == "train")
    s = BenchSettings(device="cpu", iters=n)
    work = Workload(model, x, report, "fp32", mode == "train", s, torch.device("cpu"))
    timer = StrictTimer()
    marks = runner._timed_loop(work, timer, s)
    assert timer.syncs == 1  # no synchronisation between timed steps
    assert len(marks) == n and all(len(m) == len(work.phases) + 1 for m in marks)
    assert timer.marks == n * (len(work.phases) + 1)
    times = [phase_times(timer, m, work.phases) for m in marks]
    for t in times:
        # the phases tile the step: their times add up to the whole step
        assert sum(t[p] for p in work.phases) == pytest.approx(t["total"], abs=1e-6)


def test_cuda_event_timer_records_timing_events_on_the_device_stream(monkeypatch):
    """CudaEventTimer against stand-ins for torch.cuda's Event, streams and synchronize:
    it asks for timing events, records them on the current stream of its own device,
    synchronises that device and reads start.elapsed_time(end)."""
    from cnnscope.benchmark.timing import CudaEventTimer

    calls: list[tuple] = []

    class FakeEvent:
        def __init__(self, enable_timing=False):
            assert enable_timing, "an event without enable_timing has no time to read"
            self.stream = None

        def record(self, stream=None):
            self.stream = stream
            calls.append(("record", stream))

        def elapsed_time(self, end):
            calls.append(("elapsed", self.stream, end.stream))
            return 1.5

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: f"stream of {device}")
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(("sync", device)))

    timer = CudaEventTimer("cuda:1")
    a, b = timer.mark(), timer.mark()
    timer.sync()
    assert timer.elapsed_ms(a, b) == 1.5
    stream = f"stream of {torch.device('cuda:1')}"
    assert calls == [("record", stream), ("record", stream), ("sync", torch.device("cuda:1")),
                     ("elapsed", stream, stream)]
    with pytest.raises(ValueError, match="CUDA device"):
        CudaEventTimer("cpu")
