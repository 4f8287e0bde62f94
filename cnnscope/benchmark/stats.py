"""Statistics of timing samples and the warm-up settling rule. Pure Python, no torch.

Timings are skewed (a step can only be slowed down, by the OS, a clock change, another
process), so the figure reported is the median and the spread is given by quantiles
(IQR = p75 - p25, and p10/p90), never by mean and standard deviation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 <= q <= 1) with linear interpolation between order statistics.

    This is Hyndman & Fan's type 7, the default of numpy.quantile and of
    ``statistics.quantiles(method="inclusive")``: position h = (n - 1) * q in the sorted
    values, interpolated between its neighbours.
    """
    if not values:
        raise ValueError("no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside [0, 1]")
    xs = sorted(values)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def median(values: Sequence[float]) -> float:
    return quantile(values, 0.5)


@dataclass(frozen=True)
class Summary:
    """Median and spread of a set of timings (milliseconds, or any unit)."""

    n: int
    median: float
    p10: float
    p25: float
    p75: float
    p90: float
    mean: float
    min: float
    max: float

    @property
    def iqr(self) -> float:
        return self.p75 - self.p25

    @property
    def relative_iqr(self) -> float:
        """IQR / median: 0.02 means the middle half of the samples lie within 2%."""
        return self.iqr / self.median if self.median else math.inf


def summarize(samples: Sequence[float]) -> Summary:
    """Median, quartiles, p10/p90, mean, min and max of ``samples``."""
    if not samples:
        raise ValueError("no samples to summarize")
    xs = sorted(float(s) for s in samples)
    return Summary(
        n=len(xs),
        median=quantile(xs, 0.5),
        p10=quantile(xs, 0.10),
        p25=quantile(xs, 0.25),
        p75=quantile(xs, 0.75),
        p90=quantile(xs, 0.90),
        mean=sum(xs) / len(xs),
        min=xs[0],
        max=xs[-1],
    )


# --------------------------------------------------------------------------- warm-up


@dataclass(frozen=True)
class SettleRule:
    """When warm-up may stop.

    Run at least ``min_iters`` iterations. After that, stop as soon as the median of the
    last ``window`` iterations is within ``tolerance`` (relative) of the median of the
    ``window`` iterations before them; give up at ``max_iters``. Windows slide by one
    iteration, so the rule is checked after every iteration once 2 x ``window`` exist.
    ``max_iters <= min_iters`` means a fixed warm-up of ``min_iters`` with no check.
    """

    min_iters: int = 5
    max_iters: int = 50
    window: int = 3
    tolerance: float = 0.05

    def __post_init__(self) -> None:
        if self.min_iters < 0 or self.window < 1 or self.tolerance < 0:
            raise ValueError("min_iters >= 0, window >= 1 and tolerance >= 0 are required")

    @property
    def fixed(self) -> bool:
        return self.max_iters <= self.min_iters


def settled(samples: Sequence[float], window: int, tolerance: float) -> bool:
    """Whether the last ``window`` samples' median is within ``tolerance`` of the previous window's."""
    if len(samples) < 2 * window:
        return False
    last = median(samples[-window:])
    previous = median(samples[-2 * window:-window])
    if previous <= 0:
        return last <= 0
    return abs(last - previous) <= tolerance * previous


@dataclass(frozen=True)
class WarmupResult:
    iters: int
    settled: bool | None  # None: fixed warm-up, not checked
    samples: tuple[float, ...]


def warm_up(step: Callable[[], float], rule: SettleRule) -> WarmupResult:
    """Call ``step`` (which runs one iteration and returns its time) until ``rule`` says stop."""
    samples: list[float] = []
    if rule.fixed:
        for _ in range(rule.min_iters):
            samples.append(step())
        return WarmupResult(len(samples), None, tuple(samples))
    while len(samples) < rule.max_iters:
        samples.append(step())
        if len(samples) >= rule.min_iters and settled(samples, rule.window, rule.tolerance):
            return WarmupResult(len(samples), True, tuple(samples))
    return WarmupResult(len(samples), False, tuple(samples))


def warmup_iterations(samples: Sequence[float], rule: SettleRule) -> WarmupResult:
    """``warm_up`` replayed on a recorded sequence (for tests and for reading old logs).

    Raises ``ValueError`` when the sequence ends before the rule stops.
    """
    it = iter(samples)

    def step() -> float:
        try:
            return next(it)
        except StopIteration:
            raise ValueError("the sequence ended before warm-up stopped") from None

    return warm_up(step, rule)
