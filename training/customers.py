"""The trainer's customer stage: segments, churn risk and repurchase cycles, in one pass.

Produces the artifact's segments file (statistics, scores, segment and churn probability per
purchasing customer), its repurchase arrays (cycles and purchase histories) and the manifest's
`customers` section (segment counts, the churn model's evaluation, cycle coverage).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.rfm import customer_features
from models.segments import DEFAULT_RULES, SegmentRules, load_rules
from training.churn import train_churn
from training.config import TrainConfig
from training.eventlog import EventLog
from training.repurchase import SOURCE_CATEGORY, SOURCE_ITEM, learn_cycles, purchase_history
from training.segments import segment_counts, segment_customers


@dataclass
class CustomerArtifacts:
    segments: dict
    repurchase: dict[str, np.ndarray]
    report: dict


def rules_of(config: TrainConfig) -> SegmentRules:
    return load_rules(config.segment_rules) if config.segment_rules else DEFAULT_RULES


def analyse_customers(log: EventLog, config: TrainConfig, consumable: np.ndarray) -> CustomerArtifacts:
    rules = rules_of(config)
    churn = train_churn(log, window_days=config.churn_window_days, seed=config.random_state,
                        max_customers=config.churn_max_customers)
    probability = np.full(log.n_users, np.nan, np.float32)
    if churn.probability is not None:
        probability[churn.users] = churn.probability
    segments = segment_customers(log, rules, churn_probability=probability)
    cycles, source = learn_cycles(log, consumable, min_item_intervals=config.repurchase_min_item_intervals,
                                  min_category_intervals=config.repurchase_min_category_intervals)
    repurchase = {"cycle_days": cycles, "cycle_source": source, **purchase_history(log)}
    with_cycle = np.isfinite(cycles)
    counts = segment_counts(segments, rules)
    # Customers who never bought have no row; they all share one segment (prospect by default).
    never = rules.assign(customer_features(None, segments["as_of_ms"], windows=rules.windows))
    counts[never] += log.n_users - len(segments["users"])
    report = {
        "rules": str(config.segment_rules) if config.segment_rules else "default",
        "customers": log.n_users,
        "purchasing_customers": len(segments["users"]),
        "segments": counts,
        "churn": churn.report,
        "repurchase": {
            "items_with_cycle": int(with_cycle.sum()),
            "from_item": int((source == SOURCE_ITEM).sum()),
            "from_category": int((source == SOURCE_CATEGORY).sum()),
            "median_cycle_days": round(float(np.median(cycles[with_cycle])), 1) if with_cycle.any() else None,
        },
    }
    return CustomerArtifacts(segments, repurchase, report)
