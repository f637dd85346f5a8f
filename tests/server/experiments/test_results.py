"""Results statistics: exact arithmetic on small cases, then fast simulations with known truth.

The simulations are benchmarks/experiments_sim.py's, with fewer runs; bounds are looser than
the benchmark's targets but still fail when an interval or test is wrong (e.g. a 90% interval
reported as 95%, or a fixed-horizon interval used under peeking).
"""

import math

import pytest

from benchmarks.experiments_sim import aa_peeking, cuped_gain, interval_coverage, srm_detection
from server.experiments.records import (
    Assignment,
    VariantCounters,
    conversion_update,
    exposure_delta,
)
from server.experiments.results import analyze, compare, daily_series, moments, srm_p_value


def _units(ys, xs=None):
    """Counters for explicit per-unit outcomes, the way the store accumulates them."""
    xs = xs or [0.0] * len(ys)
    c = VariantCounters()
    for y, x in zip(ys, xs, strict=True):
        c = c.add(exposure_delta(x))
        if y:
            _, delta = conversion_update(Assignment("v", 0, "u", pre=x), 0.0, 1, 10)
            c = c.add(delta)
    return c


def test_rates_and_lift_against_hand_computed_values():
    a = VariantCounters(units=1000, conversions=50, revenue=2500.0, revenue_sq=250_000.0)
    b = VariantCounters(units=1000, conversions=60, revenue=3000.0, revenue_sq=300_000.0)
    res = analyze(["control", "b"], [a, b], [0.5, 0.5], revenue=True)
    control, treat = res.variants
    assert (control.rate, treat.rate, treat.revenue_per_unit) == (0.05, 0.06, 3.0)
    assert treat.conversion.lift == pytest.approx(0.2)
    # delta-method variance of the relative lift, by hand
    va, vb = 0.05 * 0.95 * 1000 / 999, 0.06 * 0.94 * 1000 / 999
    se = math.sqrt(vb / (0.05**2 * 1000) + va * 0.06**2 / (0.05**4 * 1000))
    assert treat.conversion.ci[1] - treat.conversion.ci[0] == pytest.approx(2 * 1.9623 * se, rel=1e-3)
    assert 0.1 < treat.conversion.p_value < 0.5  # 50 vs 60 out of 1,000 is not significant
    assert treat.conversion.chance_to_beat_control == pytest.approx(
        1 - treat.conversion.p_value / 2, abs=0.01
    )
    assert treat.revenue.lift == pytest.approx(0.2)
    assert control.conversion is None


def test_sequential_interval_is_wider_than_the_fixed_one_and_both_shrink_with_data():
    small = compare(
        moments(VariantCounters(units=2000, conversions=100), "conversion"),
        moments(VariantCounters(units=2000, conversions=110), "conversion"),
    )
    big = compare(
        moments(VariantCounters(units=200_000, conversions=10_000), "conversion"),
        moments(VariantCounters(units=200_000, conversions=11_000), "conversion"),
    )
    for c in (small, big):
        assert c.sequential_ci[0] < c.ci[0] < c.lift < c.ci[1] < c.sequential_ci[1]
    assert big.sequential_ci[1] - big.sequential_ci[0] < (small.ci[1] - small.ci[0]) / 3
    assert big.p_value < 1e-10


def test_srm_is_flagged_only_for_a_real_mismatch():
    assert srm_p_value([10_000, 10_050], [0.5, 0.5]) > 0.5
    assert srm_p_value([10_000, 9_000], [0.5, 0.5]) < 1e-6
    assert srm_p_value([2_000, 8_000], [0.2, 0.8]) > 0.5
    res = analyze(["a", "b"], [VariantCounters(units=10_000), VariantCounters(units=9_000)], [0.5, 0.5])
    assert res.srm


def test_cuped_uses_the_covariate_and_matches_plain_without_one():
    xs = [float(i % 5) for i in range(400)]
    ys = [1 if (i % 5) >= 3 or i % 17 == 0 else 0 for i in range(400)]
    a, b = _units(ys, xs), _units(ys[::-1], xs[::-1])
    with_cuped = compare(moments(a, "conversion"), moments(b, "conversion"), cuped=True)
    plain = compare(moments(a, "conversion"), moments(b, "conversion"), cuped=False)
    assert with_cuped.cuped and not plain.cuped
    assert with_cuped.ci[1] - with_cuped.ci[0] < 0.8 * (plain.ci[1] - plain.ci[0])
    no_cov_a, no_cov_b = _units(ys), _units(ys[::-1])
    assert not compare(moments(no_cov_a, "conversion"), moments(no_cov_b, "conversion")).cuped


def test_revenue_sum_of_squares_follows_each_units_running_total():
    rec = Assignment("v", 1000, "u")
    c = exposure_delta()
    for amount in (10.0, 5.0, 20.0):
        rec, delta = conversion_update(rec, amount, 2000, 10_000)
        c = c.add(delta)
    assert (c.conversions, c.revenue, c.revenue_sq) == (1, 35.0, 35.0**2)
    assert conversion_update(rec, 5.0, 1000 + 10_001, 10_000) is None  # after the window
    assert conversion_update(rec, 5.0, 999, 10_000) is None  # before the exposure


def test_daily_series_is_cumulative():
    day1 = [VariantCounters(units=100, conversions=5), VariantCounters(units=100, conversions=7)]
    day2 = [VariantCounters(units=50, conversions=5), VariantCounters(units=60, conversions=3)]
    points = daily_series(["a", "b"], [(2, day2), (1, day1)], [0.5, 0.5])
    assert [p.day for p in points] == [1, 2]
    assert [v.units for v in points[1].results.variants] == [150, 160]
    assert points[1].results.variants[1].conversions == 10


def test_intervals_cover_the_truth_in_simulation():
    result = interval_coverage(1000)  # fixed seed: deterministic; ~0.3 s
    assert 0.93 <= result["coverage"] <= 0.975  # a 90% (or 99%) interval would land outside
    assert result["sequential_coverage"] >= 0.95


def test_injected_sample_ratio_mismatch_is_flagged():
    result = srm_detection(200)
    assert result["flag_rate"] >= 0.95 and result["false_alarm_rate"] <= 0.02


def test_sequential_interval_survives_daily_peeking_in_aa_tests():
    result = aa_peeking(150, days=14)
    assert result["sequential_false_positive_rate"] <= 0.08
    assert result["fixed_false_positive_rate"] >= 0.12  # the check can tell the two apart


def test_cuped_narrows_intervals_when_the_past_predicts_conversion():
    result = cuped_gain(60, n=2000)
    assert result["width_ratio_mean"] < 0.9
    assert result["cuped_coverage"] >= 0.85
