"""Simulated experiments with known truth: do the results statistics say what they promise?

    .venv/bin/python benchmarks/experiments_sim.py            # writes benchmarks/results/experiments.md
    .venv/bin/python benchmarks/experiments_sim.py --sims 200 # quicker, noisier

Every check feeds server/experiments/results.py (and bandit.py) the same counters the store
keeps (records.VariantCounters), built from simulated units. tests/server/experiments/
test_results.py runs the same functions with fewer simulations and looser bounds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.experiments.bandit import thompson_weights  # noqa: E402
from server.experiments.records import VariantCounters  # noqa: E402
from server.experiments.results import compare, moments, srm_p_value  # noqa: E402


def _binary_counters(n: int, conversions: int) -> VariantCounters:
    return VariantCounters(units=n, conversions=conversions)


def interval_coverage(sims: int, seed: int = 1) -> dict:
    """Share of 95% intervals (fixed-horizon and sequential) covering the true relative lift."""
    rng = np.random.default_rng(seed)
    covered = seq_covered = 0
    for _ in range(sims):
        p_a = rng.uniform(0.02, 0.10)
        lift = rng.uniform(-0.2, 0.2)
        n = int(rng.integers(5_000, 20_000))
        a = _binary_counters(n, int(rng.binomial(n, p_a)))
        b = _binary_counters(n, int(rng.binomial(n, p_a * (1 + lift))))
        c = compare(moments(a, "conversion"), moments(b, "conversion"))
        covered += c.ci[0] <= lift <= c.ci[1]
        seq_covered += c.sequential_ci[0] <= lift <= c.sequential_ci[1]
    return {"sims": sims, "coverage": covered / sims, "sequential_coverage": seq_covered / sims}


def srm_detection(sims: int, units: int = 50_000, mismatch: float = 0.05, seed: int = 2) -> dict:
    """Flag rate with 5% of the treatment's units lost (and without: the false-alarm rate)."""
    rng = np.random.default_rng(seed)
    flagged = false_alarms = 0
    p_treat = 0.5 * (1 - mismatch) / (0.5 + 0.5 * (1 - mismatch))
    for _ in range(sims):
        t = int(rng.binomial(units, p_treat))
        flagged += srm_p_value([units - t, t], [0.5, 0.5]) < 0.001
        t = int(rng.binomial(units, 0.5))
        false_alarms += srm_p_value([units - t, t], [0.5, 0.5]) < 0.001
    return {
        "sims": sims,
        "units": units,
        "flag_rate": flagged / sims,
        "false_alarm_rate": false_alarms / sims,
    }


def aa_peeking(sims: int, days: int = 28, daily_units: int = 400, rate: float = 0.05, seed: int = 3) -> dict:
    """A/A tests looked at every day: how often does an interval ever exclude zero?"""
    rng = np.random.default_rng(seed)
    seq_fp = fixed_fp = 0
    for _ in range(sims):
        n = rng.poisson(daily_units, size=(days, 2)).cumsum(axis=0)
        conv = rng.binomial(np.diff(n, axis=0, prepend=0), rate).cumsum(axis=0)
        seq_hit = fixed_hit = False
        for d in range(days):
            c = compare(
                moments(_binary_counters(int(n[d, 0]), int(conv[d, 0])), "conversion"),
                moments(_binary_counters(int(n[d, 1]), int(conv[d, 1])), "conversion"),
            )
            if c is None:
                continue
            seq_hit |= not (c.sequential_ci[0] <= 0 <= c.sequential_ci[1])
            fixed_hit |= not (c.ci[0] <= 0 <= c.ci[1])
        seq_fp += seq_hit
        fixed_fp += fixed_hit
    return {
        "sims": sims,
        "days": days,
        "daily_units_per_arm": daily_units,
        "sequential_false_positive_rate": seq_fp / sims,
        "fixed_false_positive_rate": fixed_fp / sims,
    }


def _cuped_counters(rng: np.random.Generator, n: int, lift: float) -> VariantCounters:
    # Pre-exposure purchases (x) vary by shopper; the conversion probability rises with them
    # (x capped at 5 so p stays below 1 and the true relative lift is exactly `lift`)
    x = np.minimum(rng.poisson(rng.gamma(0.5, 2.0, size=n)), 5).astype(float)
    p = (0.02 + 0.15 * x) * (1 + lift)
    y = (rng.random(n) < p).astype(float)
    return VariantCounters(
        units=n,
        conversions=int(y.sum()),
        pre=float(x.sum()),
        pre_sq=float((x * x).sum()),
        pre_conv=float((x * y).sum()),
    )


def cuped_gain(sims: int, n: int = 4_000, seed: int = 4) -> dict:
    """Interval width with and without CUPED when past purchases predict conversion."""
    rng = np.random.default_rng(seed)
    ratios, covered, plain_covered = [], 0, 0
    for _ in range(sims):
        lift = rng.uniform(-0.1, 0.1)
        a, b = _cuped_counters(rng, n, 0.0), _cuped_counters(rng, n, lift)
        with_cuped = compare(moments(a, "conversion"), moments(b, "conversion"), cuped=True)
        plain = compare(moments(a, "conversion"), moments(b, "conversion"), cuped=False)
        ratios.append((with_cuped.ci[1] - with_cuped.ci[0]) / (plain.ci[1] - plain.ci[0]))
        covered += with_cuped.ci[0] <= lift <= with_cuped.ci[1]
        plain_covered += plain.ci[0] <= lift <= plain.ci[1]
    ratios = np.array(ratios)
    return {
        "sims": sims,
        "units_per_arm": n,
        "width_ratio_mean": float(ratios.mean()),
        "width_ratio_p90": float(np.quantile(ratios, 0.9)),
        "cuped_coverage": covered / sims,
        "plain_coverage": plain_covered / sims,
    }


def bandit_run(
    rates=(0.04, 0.05, 0.06),
    periods: int = 40,
    units_per_period: int = 3_000,
    floor: float = 0.05,
    seed: int = 5,
) -> dict:
    """One simulated bandit: new units each period split by the current weights; assigned
    units stay where they are (sticky), so only the split of new units moves."""
    rng = np.random.default_rng(seed)
    k = len(rates)
    weights = [1 / k] * k
    counters = [VariantCounters() for _ in rates]
    best = int(np.argmax(rates))
    regret = 0.0
    last_share = 0.0
    for period in range(periods):
        split = rng.multinomial(units_per_period, weights)
        for i, n in enumerate(split):
            counters[i].units += int(n)
            counters[i].conversions += int(rng.binomial(n, rates[i]))
            regret += n * (rates[best] - rates[i])
        last_share = split[best] / units_per_period
        weights = thompson_weights(counters, floor, seed=seed * 1000 + period)
    total = periods * units_per_period
    fixed_regret = total * (rates[best] - float(np.mean(rates)))
    return {
        "final_best_share": last_share,
        "final_best_weight": weights[best],
        "regret": regret,
        "fixed_split_regret": fixed_regret,
        "best_share_overall": counters[best].units / total,
    }


def bandit_runs(runs: int, **kwargs) -> dict:
    results = [bandit_run(seed=100 + r, **kwargs) for r in range(runs)]
    shares = np.array([r["final_best_share"] for r in results])
    regret = np.array([r["regret"] for r in results])
    return {
        "runs": runs,
        "final_best_share_min": float(shares.min()),
        "final_best_share_mean": float(shares.mean()),
        "regret_mean": float(regret.mean()),
        "fixed_split_regret": results[0]["fixed_split_regret"],
        "regret_ratio": float(regret.mean() / results[0]["fixed_split_regret"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=1000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "experiments.md"))
    args = parser.parse_args()
    started = time.time()
    cov = interval_coverage(args.sims)
    srm = srm_detection(args.sims)
    aa = aa_peeking(args.sims)
    cup = cuped_gain(args.sims)
    ban = bandit_runs(max(args.sims // 50, 5))
    elapsed = time.time() - started
    lines = [
        "# Experiment statistics by simulation",
        "",
        f"`.venv/bin/python benchmarks/experiments_sim.py --sims {args.sims}` ({elapsed:.0f} s).",
        "Each check feeds `server/experiments/results.py` the counters the store keeps, built",
        "from simulated units with a known truth.",
        "",
        "| check | target | measured |",
        "| --- | --- | --- |",
        f"| 95% interval covers the true relative lift ({cov['sims']} experiments, conversion 2-10%, "
        f"lift +-20%, 5k-20k units/arm) | 93-97% | {cov['coverage']:.1%} |",
        f"| sequential interval covers it (same experiments) | >= 95% | {cov['sequential_coverage']:.1%} |",
        f"| injected 5% sample-ratio mismatch flagged (p < 0.001, {srm['units']:,} units, "
        f"{srm['sims']} runs) "
        f"| flagged | {srm['flag_rate']:.1%} |",
        f"| SRM false alarms without mismatch | ~0.1% | {srm['false_alarm_rate']:.1%} |",
        f"| A/A, peeked daily for {aa['days']} days (~{aa['daily_units_per_arm']} units/arm/day, "
        f"{aa['sims']} tests): sequential interval ever excludes 0 | <= 5% "
        f"| {aa['sequential_false_positive_rate']:.1%} |",
        f"| same A/A tests, fixed-horizon 95% interval ever excludes 0 (why sequential) | - "
        f"| {aa['fixed_false_positive_rate']:.1%} |",
        f"| CUPED interval width / plain width ({cup['sims']} experiments, "
        f"{cup['units_per_arm']:,} units/arm, "
        f"conversion rising with past purchases) | < 1 | {cup['width_ratio_mean']:.3f} "
        f"(narrower by {1 - cup['width_ratio_mean']:.1%}; p90 ratio {cup['width_ratio_p90']:.3f}) |",
        f"| CUPED interval still covers the truth | 93-97% | {cup['cuped_coverage']:.1%} "
        f"(plain {cup['plain_coverage']:.1%}) |",
        f"| bandit, 3 arms (4%, 5%, 6%), 40 updates x 3,000 new units, floor 5% ({ban['runs']} runs): "
        f"best arm's share of the last period's traffic | >= 80% | min {ban['final_best_share_min']:.1%}, "
        f"mean {ban['final_best_share_mean']:.1%} |",
        f"| bandit regret (conversions lost vs always-best) against a fixed 1/3 split | < fixed "
        f"| {ban['regret_mean']:.0f} vs {ban['fixed_split_regret']:.0f} ({ban['regret_ratio']:.0%} of it) |",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
