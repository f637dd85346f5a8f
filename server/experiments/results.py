"""Experiment results from per-variant counters: never on the request path.

The statistics follow GrowthBook's engine (gbstats), reimplemented over Vitrine's counters
because gbstats 0.8 pins numpy<2 and pandas<2 (the server runs numpy 2) and wants a
DataFrame per query; the formulas are its own:
- relative lift (treatment mean - control mean) / control mean, variance by the delta method,
  Welch t interval and two-sided p-value (gbstats `TwoSidedTTest`);
- chance to beat control: the normal posterior of the lift under a flat prior
  (`EffectBayesianABTest` with an improper prior);
- sequential testing: the asymptotic confidence sequence of Waudby-Smith et al. (eq. 9 of
  arXiv 2103.06476v7, gbstats `SequentialTwoSidedTTest`), valid however often it is looked at;
- CUPED: one theta pooled over control and treatment, y - theta * x per variant
  (`RegressionAdjustedStatistic`), the lift relative to the unadjusted control mean;
- sample-ratio mismatch: chi-square of units against the weights, flagged at p < 0.001.
scipy is imported inside the functions (`vitrine[stats]`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import msgspec

from server.experiments.records import VariantCounters

SRM_ALPHA = 0.001
SEQUENTIAL_TUNING = 5000  # gbstats' default N*: the sample size the sequence is tightest at
Metric = Literal["conversion", "revenue"]


class Moments(msgspec.Struct, frozen=True):
    """One variant's metric: n units, mean and variance of y, covariate x's mean/variance, cov."""

    n: int
    mean: float
    var: float
    x_mean: float = 0.0
    x_var: float = 0.0
    cov: float = 0.0


class Comparison(msgspec.Struct):
    """A variant against the control on one metric (lift relative to the control's mean)."""

    lift: float
    ci: tuple[float, float]
    p_value: float
    chance_to_beat_control: float
    sequential_ci: tuple[float, float]
    cuped: bool  # whether the estimate used the pre-exposure covariate


class VariantResult(msgspec.Struct):
    key: str
    units: int
    conversions: int
    rate: float
    revenue_per_unit: float
    conversion: Comparison | None = None  # None for the control
    revenue: Comparison | None = None


class Results(msgspec.Struct):
    variants: list[VariantResult]
    srm_p_value: float
    srm: bool  # sample-ratio mismatch: do not trust the comparisons


def moments(c: VariantCounters, metric: Metric) -> Moments:
    n = c.units
    if n < 2:
        return Moments(n, 0.0, 0.0)
    if metric == "conversion":
        total, total_sq, xy = float(c.conversions), float(c.conversions), c.pre_conv
    else:
        total, total_sq, xy = c.revenue, c.revenue_sq, c.pre_rev
    mean = total / n
    var = max((total_sq - total * mean) / (n - 1), 0.0)
    x_mean = c.pre / n
    x_var = max((c.pre_sq - c.pre * x_mean) / (n - 1), 0.0)
    cov = (xy - c.pre * mean) / (n - 1)
    return Moments(n, mean, var, x_mean, x_var, cov)


def cuped_theta(a: Moments, b: Moments) -> float:
    """Pooled regression slope of y on the covariate (0 when the covariate doesn't vary)."""
    n = a.n + b.n
    if n < 3:
        return 0.0
    x_mean = (a.n * a.x_mean + b.n * b.x_mean) / n
    y_mean = (a.n * a.mean + b.n * b.mean) / n
    # pooled sums of squares and cross-products about the joint means
    sxx = sum((m.n - 1) * m.x_var + m.n * (m.x_mean - x_mean) ** 2 for m in (a, b))
    sxy = sum((m.n - 1) * m.cov + m.n * (m.x_mean - x_mean) * (m.mean - y_mean) for m in (a, b))
    return sxy / sxx if sxx > 0 else 0.0


def _adjusted(m: Moments, theta: float) -> tuple[float, float]:
    """CUPED mean and variance of y - theta * x."""
    var = m.var + theta * theta * m.x_var - 2 * theta * m.cov
    return m.mean - theta * m.x_mean, max(var, 0.0)


def compare(
    a: Moments, b: Moments, *, alpha: float = 0.05, cuped: bool = True, tuning: float = SEQUENTIAL_TUNING
) -> Comparison | None:
    """Relative lift of b over a with its intervals; None when it can't be estimated (too few
    units, a zero control mean, or no variance)."""
    from scipy.stats import norm, t

    if a.n < 2 or b.n < 2 or a.mean == 0:
        return None
    theta = cuped_theta(a, b) if cuped else 0.0
    mean_a, var_a = _adjusted(a, theta)
    mean_b, var_b = _adjusted(b, theta)
    if var_a <= 0 and var_b <= 0:
        return None
    lift = (mean_b - mean_a) / a.mean
    # delta method on the ratio, with the unadjusted means as gbstats does
    variance = var_b / (a.mean**2 * b.n) + var_a * b.mean**2 / (a.mean**4 * a.n)
    se = math.sqrt(variance)
    va, vb = var_a / a.n, var_b / b.n
    dof_den = (va * va / (a.n - 1)) + (vb * vb / (b.n - 1))
    dof = (va + vb) ** 2 / dof_den if dof_den > 0 else float(a.n + b.n - 2)
    half = float(t.ppf(1 - alpha / 2, dof)) * se
    p_value = float(2 * t.sf(abs(lift) / se, dof))
    chance = float(norm.sf(0, loc=lift, scale=se))
    seq = sequential_halfwidth(variance, a.n + b.n, alpha, tuning)
    return Comparison(
        lift=lift,
        ci=(lift - half, lift + half),
        p_value=p_value,
        chance_to_beat_control=chance,
        sequential_ci=(lift - seq, lift + seq),
        cuped=theta != 0.0,
    )


def sequential_halfwidth(
    variance: float, n: int, alpha: float = 0.05, tuning: float = SEQUENTIAL_TUNING
) -> float:
    """Half-width of the always-valid interval (Waudby-Smith et al., eq. 9; rho per eq. 161)."""
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    s2 = variance * n
    nr = n * rho2 + 1
    return math.sqrt(s2) * math.sqrt(2 * nr * math.log(math.sqrt(nr) / alpha) / (n * n * rho2))


def srm_p_value(units: Sequence[int], weights: Sequence[float]) -> float:
    """Chi-square test of observed units against the weights (1.0 with no units)."""
    from scipy.stats import chisquare

    total = sum(units)
    if total == 0 or len(units) < 2:
        return 1.0
    w = sum(weights)
    expected = [total * wi / w for wi in weights]
    return float(chisquare(list(units), expected).pvalue)


def analyze(
    keys: Sequence[str],
    counters: Sequence[VariantCounters],
    weights: Sequence[float],
    *,
    revenue: bool = False,
    alpha: float = 0.05,
    cuped: bool = True,
) -> Results:
    """Per variant rates and comparisons against the first (the control).

    `weights` are the expected traffic shares for the SRM check. For a bandit, whose weights
    move, pass each variant's expected share over the whole run (sum over update periods of
    new units x that period's weight); its pooled lifts also mix periods with different
    splits, so read a bandit by its posterior (bandit.probability_best), not by these lifts.
    """
    control = counters[0]
    out = []
    for i, (key, c) in enumerate(zip(keys, counters, strict=True)):
        result = VariantResult(
            key=key,
            units=c.units,
            conversions=c.conversions,
            rate=c.conversions / c.units if c.units else 0.0,
            revenue_per_unit=c.revenue / c.units if c.units else 0.0,
        )
        if i > 0:
            result.conversion = compare(
                moments(control, "conversion"), moments(c, "conversion"), alpha=alpha, cuped=cuped
            )
            if revenue:
                result.revenue = compare(
                    moments(control, "revenue"), moments(c, "revenue"), alpha=alpha, cuped=cuped
                )
        out.append(result)
    p = srm_p_value([c.units for c in counters], weights)
    return Results(out, p, p < SRM_ALPHA)


class DayPoint(msgspec.Struct):
    day: int
    results: Results  # cumulative up to and including this day


def daily_series(
    keys: Sequence[str],
    days: Sequence[tuple[int, Sequence[VariantCounters]]],
    weights: Sequence[float],
    **kwargs,
) -> list[DayPoint]:
    """Cumulative results per day from per-day counter increments (records.day_of), for the
    trend and cumulative-lift charts. Increments add up exactly (records.conversion_update
    keeps sums of squares over each unit's running total)."""
    running = [VariantCounters() for _ in keys]
    points = []
    for day, increments in sorted(days, key=lambda d: d[0]):
        running = [r.add(inc) for r, inc in zip(running, increments, strict=True)]
        points.append(DayPoint(day, analyze(keys, running, weights, **kwargs)))
    return points
