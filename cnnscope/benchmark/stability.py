"""Was a measurement clean? The machine's state around a timed stretch, and the verdict.

A median from a shared machine can be 4x the idle figure with nothing in the samples to
say so: when two busy processes share the cores, every iteration is slow alike and the
spread can stay small. So the verdict looks at the machine as well as at the samples,
and names the cause rather than the symptom:

- **other processes' CPU time** on the cores this process may run on (its affinity
  mask), from ``/proc/stat``'s per-CPU counters less this process's own CPU time: the
  direct measure of contention (the load average is a one-minute moving average, still
  high a minute after the load stopped, so it is reported, not judged on);
- **CPU steal** (``/proc/stat``'s steal column): time the hypervisor gave other guests;
- **spread**: IQR / median of the samples over ``SPREAD_LIMIT`` (as
  ``torch.utils.benchmark.Timer.adaptive_autorange`` stops below its threshold, 0.1, and
  pyperf warns when the standard deviation exceeds 10 % of the mean).

Google Benchmark warns when CPU frequency scaling is enabled; a frequency governor is
not visible in most containers, so it is not judged here. Pure Python, no torch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

SPREAD_LIMIT = 0.10  # IQR / median above this: the samples disagree
OTHER_CPU_LIMIT = 0.10  # other processes' share of the usable cores above this: contended
STEAL_LIMIT = 0.05  # CPU steal share above this: the hypervisor took the cores


def usable_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on (its affinity mask), or all of them."""
    try:
        return tuple(sorted(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return tuple(range(os.cpu_count() or 1))


def default_threads() -> int:
    """The intra-op threads a benchmark uses by default: one per usable core."""
    return max(1, len(usable_cpus()))


@dataclass(frozen=True)
class CpuCounters:
    """Cumulative CPU time (seconds) on the usable cores, and this process's own."""

    busy_s: float  # user + nice + system + irq + softirq on the usable cores
    steal_s: float
    own_s: float  # this process's CPU time (all its threads)
    wall_s: float  # time.perf_counter()
    cores: int


def _clock_ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100.0


def parse_proc_stat(text: str, cpus: tuple[int, ...]) -> tuple[float, float] | None:
    """(busy, steal) ticks summed over ``cpus`` from ``/proc/stat``'s ``cpuN`` lines; the
    aggregate ``cpu`` line scaled to ``cpus`` when a listed CPU has no line; None when
    the text has neither."""
    per_cpu: dict[int, tuple[float, float]] = {}
    total: tuple[float, float, int] | None = None
    for line in text.splitlines():
        if not line.startswith("cpu"):
            continue
        name, *fields = line.split()
        try:
            values = [float(v) for v in fields]
        except ValueError:
            continue
        if len(values) < 8:
            continue
        # user nice system idle iowait irq softirq steal [guest guest_nice]; guest time
        # is already inside user.
        busy = values[0] + values[1] + values[2] + values[5] + values[6]
        steal = values[7]
        if name == "cpu":
            total = (busy, steal, 0)
        elif name[3:].isdigit():
            per_cpu[int(name[3:])] = (busy, steal)
    if per_cpu and all(c in per_cpu for c in cpus):
        return (sum(per_cpu[c][0] for c in cpus), sum(per_cpu[c][1] for c in cpus))
    if total is not None:
        share = len(cpus) / max(1, len(per_cpu) or os.cpu_count() or 1)
        return total[0] * share, total[1] * share
    return None


def read_counters() -> CpuCounters | None:
    """The counters now; None where ``/proc/stat`` cannot be read (not Linux)."""
    cpus = usable_cpus()
    try:
        with open("/proc/stat", encoding="ascii", errors="replace") as fh:
            parsed = parse_proc_stat(fh.read(), cpus)
    except OSError:
        return None
    if parsed is None:
        return None
    tick = _clock_ticks()
    return CpuCounters(busy_s=parsed[0] / tick, steal_s=parsed[1] / tick,
                       own_s=time.process_time(), wall_s=time.perf_counter(), cores=len(cpus))


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Interference:
    """What else used the usable cores over a stretch of time (shares of their capacity)."""

    other_cpu: float | None  # other processes' CPU time / (wall time x usable cores)
    steal: float | None  # stolen time / (wall time x usable cores)
    load_average: float | None  # one-minute load average at the end
    cores: int


def interference(before: CpuCounters | None, after: CpuCounters | None) -> Interference:
    """The shares between two ``read_counters()``; None shares where they are unknown."""
    load = load_average()
    if before is None or after is None or after.wall_s <= before.wall_s:
        return Interference(None, None, load, len(usable_cpus()))
    capacity = (after.wall_s - before.wall_s) * after.cores
    own = after.own_s - before.own_s
    other = max(0.0, (after.busy_s - before.busy_s) - own) / capacity
    steal = max(0.0, after.steal_s - before.steal_s) / capacity
    return Interference(round(min(other, 1.0), 4), round(min(steal, 1.0), 4), load, after.cores)


class Watch:
    """Counters at ``start()``, the interference at ``stop()``."""

    def __init__(self) -> None:
        self._before: CpuCounters | None = None

    def start(self) -> "Watch":
        self._before = read_counters()
        return self

    def stop(self) -> Interference:
        return interference(self._before, read_counters())


def causes(spread: float | None, seen: Interference, *, spread_limit: float = SPREAD_LIMIT
           ) -> tuple[str, ...]:
    """Why a measurement is not clean, one phrase per cause; empty when it is."""
    out = []
    load = f", load average {seen.load_average:g}" if seen.load_average is not None else ""
    if seen.other_cpu is not None and seen.other_cpu > OTHER_CPU_LIMIT:
        out.append(f"other processes used {seen.other_cpu:.0%} of the {seen.cores} "
                   f"usable cores{load}")
    if seen.steal is not None and seen.steal > STEAL_LIMIT:
        out.append(f"CPU steal {seen.steal:.0%} (the hypervisor ran other guests)")
    if spread is not None and spread > spread_limit:
        out.append(f"spread (IQR/median) {spread:.0%} over {spread_limit:.0%}")
    return tuple(out)
