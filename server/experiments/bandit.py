"""Bandit mode: Thompson sampling over the variants' conversion posteriors.

On a schedule (Bandit.update_every_hours) the weights become each variant's posterior
probability of being best, with an exploration floor, and are published as a new definitions
version. Only new units see the new weights: assigned units are sticky (decide.py), so a
variant's units keep their variant whatever the weights do.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from server.experiments.definitions import Experiment
from server.experiments.records import VariantCounters

DRAWS = 10_000


def probability_best(
    counters: Sequence[VariantCounters], draws: int = DRAWS, seed: int | None = None
) -> list[float]:
    """Monte Carlo share of posterior draws in which each variant has the highest rate.

    Beta(1 + conversions, 1 + non-conversions) per variant: a uniform prior.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    samples = np.stack(
        [rng.beta(1 + c.conversions, 1 + max(c.units - c.conversions, 0), size=draws) for c in counters]
    )
    wins = np.bincount(samples.argmax(axis=0), minlength=len(counters))
    return (wins / draws).tolist()


def thompson_weights(
    counters: Sequence[VariantCounters], floor: float, draws: int = DRAWS, seed: int | None = None
) -> list[float]:
    """New traffic weights: floor for every variant plus the rest split by P(best)."""
    k = len(counters)
    floor = min(max(floor, 0.0), 1.0 / k)
    best = probability_best(counters, draws, seed)
    weights = [floor + (1 - k * floor) * p for p in best]
    total = sum(weights)
    return [w / total for w in weights]


def updated_experiment(
    exp: Experiment, counters: Sequence[VariantCounters], seed: int | None = None
) -> Experiment:
    """The experiment with its weights set by Thompson sampling (unchanged if not a bandit)."""
    if exp.bandit is None:
        return exp
    weights = thompson_weights(counters, exp.bandit.floor, seed=seed)
    variants = [msgspec.structs.replace(v, weight=w) for v, w in zip(exp.variants, weights, strict=True)]
    return msgspec.structs.replace(exp, variants=variants)
