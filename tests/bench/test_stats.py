"""Statistics and the warm-up settling rule, on synthetic timings (no torch, no clock)."""

import random
import statistics

import pytest

from cnnscope.benchmark.stats import (
    SettleRule,
    quantile,
    settled,
    summarize,
    warm_up,
    warmup_iterations,
)

# ----------------------------------------------------------------------------- quantiles


def test_quantiles_of_one_to_ten_by_hand():
    xs = list(range(1, 11))  # shuffled order must not matter
    random.Random(0).shuffle(xs)
    s = summarize(xs)
    # Type-7 position h = (n - 1) * q, interpolated between the sorted values x[floor(h)]
    # and x[floor(h) + 1] (0-based); the sorted values are 1..10, so x[i] = i + 1.
    assert s.n == 10
    assert s.median == pytest.approx(5 + 0.5 * (6 - 5))  # h = 4.5
    assert s.p25 == pytest.approx(3 + 0.25 * (4 - 3))  # h = 2.25
    assert s.p75 == pytest.approx(7 + 0.75 * (8 - 7))  # h = 6.75
    assert s.p10 == pytest.approx(1 + 0.9 * (2 - 1))  # h = 0.9
    assert s.p90 == pytest.approx(9 + 0.1 * (10 - 9))  # h = 8.1
    assert s.iqr == pytest.approx(7.75 - 3.25)
    assert s.mean == pytest.approx(55 / 10)
    assert (s.min, s.max) == (1, 10)
    assert s.relative_iqr == pytest.approx(4.5 / 5.5)


def test_odd_count_median_is_the_middle_value():
    assert summarize([9.0, 1.0, 5.0]).median == 5.0
    assert quantile([3.0], 0.9) == 3.0


def test_quantiles_match_the_standard_library():
    # statistics.quantiles(method="inclusive") is the same type-7 definition, written
    # independently: percentiles 1..99 of random skewed samples must agree.
    rng = random.Random(1)
    for n in (2, 3, 7, 50, 201):
        xs = [rng.lognormvariate(0, 0.5) for _ in range(n)]
        ref = statistics.quantiles(xs, n=100, method="inclusive")
        for k, expected in enumerate(ref, start=1):
            assert quantile(xs, k / 100) == pytest.approx(expected)
        assert summarize(xs).median == pytest.approx(statistics.median(xs))


def test_median_ignores_one_slow_outlier_that_the_mean_does_not():
    s = summarize([10.0] * 9 + [1000.0])
    assert s.median == 10.0
    assert s.mean == pytest.approx((9 * 10 + 1000) / 10)
    assert s.p90 == pytest.approx(10 + 0.1 * (1000 - 10))  # h = 8.1


def test_empty_and_bad_quantile_raise():
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        quantile([1.0], 1.5)


# ----------------------------------------------------------------------------- settling


def test_settled_compares_the_last_two_windows():
    assert not settled([1.0] * 5, window=3, tolerance=0.05)  # fewer than 2 windows
    assert settled([100, 100, 100, 105, 105, 105], window=3, tolerance=0.05)  # 5% of 100
    assert not settled([100, 100, 100, 106, 106, 106], window=3, tolerance=0.05)
    assert settled([100, 100, 100, 95, 95, 95], window=3, tolerance=0.05)
    # A window's median shrugs off one hiccup.
    assert settled([100, 100, 100, 100, 300, 100], window=3, tolerance=0.05)


def test_decaying_warmup_stops_once_flat():
    # Medians of 3-windows: n=6: [50,30,20]=30 vs [10,10,10]=10; n=7: [30,20,10]=20 vs 10;
    # n=8: [20,10,10]=10 vs [10,10,10]=10 -> settled after 8 iterations.
    seq = [50, 30, 20, 10, 10, 10, 10, 10, 10, 10, 10, 10]
    res = warmup_iterations(seq, SettleRule(min_iters=5, max_iters=50, window=3, tolerance=0.05))
    assert res.iters == 8
    assert res.settled is True
    assert res.samples == tuple(seq[:8])


def test_minimum_is_respected_even_when_flat_from_the_start():
    res = warmup_iterations([10.0] * 20, SettleRule(min_iters=10, max_iters=50, window=3))
    assert res.iters == 10 and res.settled is True


def test_flat_sequence_stops_at_two_windows_when_the_minimum_is_small():
    res = warmup_iterations([10.0] * 20, SettleRule(min_iters=1, max_iters=50, window=4))
    assert res.iters == 2 * 4 and res.settled is True


def test_never_settling_gives_up_at_the_maximum():
    growing = [10 * 1.2 ** i for i in range(100)]  # every window 20%+ above the last
    res = warmup_iterations(growing, SettleRule(min_iters=5, max_iters=12, window=3))
    assert res.iters == 12
    assert res.settled is False


def test_fixed_warmup_when_max_not_above_min():
    calls = []
    res = warm_up(lambda: calls.append(1) or 5.0, SettleRule(min_iters=3, max_iters=3))
    assert res.iters == 3 and len(calls) == 3
    assert res.settled is None
    res = warm_up(lambda: 5.0, SettleRule(min_iters=0, max_iters=0))
    assert res.iters == 0 and res.settled is None


def test_sequence_too_short_is_an_error():
    with pytest.raises(ValueError):
        warmup_iterations([1.0, 2.0], SettleRule(min_iters=5, max_iters=10))


def test_bad_rule_is_refused():
    with pytest.raises(ValueError):
        SettleRule(window=0)
