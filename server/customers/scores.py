"""A customer's live statistics, segment and buy-again lists: the published statistics (as of the
model's `as_of_ms`) plus the purchases recorded since, evaluated with the rules in force. Pure
functions over `models/rfm.py`, `models/segments.py` and `models/repurchase.py` (no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from models.repurchase import DAY_MS, EARLY, LATE, due_items, not_yet_due
from models.rfm import CustomerStats, RfmEdges, customer_features, record_purchase
from models.segments import SegmentRule, SegmentRules

Purchase = tuple[int, str, float]  # (ts_ms, item_id or '', amount = price × quantity)


def live_stats(published: CustomerStats | None, purchases: Iterable[Purchase],
               windows: Iterable[int]) -> CustomerStats | None:
    """The published statistics with every later purchase recorded, oldest first."""
    stats, windows = published, tuple(windows)
    for ts, _, amount in sorted(purchases):
        stats = record_purchase(stats, ts, amount, windows)
    return stats


@dataclass(frozen=True)
class CustomerScores:
    segment: str
    rule: SegmentRule  # the first rule whose conditions all hold: why the customer is in it
    features: dict[str, float]  # what the rules read (recency_days, orders_180d, r, f, m…)
    churn_probability: float | None  # published by the churn model (as of the model's as_of_ms)
    stats: CustomerStats | None

    def as_dict(self) -> dict:
        shown = {k: (None if isinstance(v, float) and math.isinf(v) else round(v, 4))
                 for k, v in sorted(self.features.items())}
        return {"segment": self.segment, "label": self.rule.label, "why": self.rule.description or None,
                "conditions": [{"field": c.field, "op": c.op, "value": c.value, "actual": shown.get(c.field)}
                               for c in self.rule.conditions],
                "features": shown, "churn_probability": self.churn_probability}


def score_customer(stats: CustomerStats | None, now_ms: int, rules: SegmentRules, edges: RfmEdges | None,
                   churn_probability: float | None) -> CustomerScores:
    features = customer_features(stats, now_ms, edges, rules.windows)
    if churn_probability is not None:
        features["churn_probability"] = churn_probability
    rule = next((r for r in rules.rules if r.matches(features)), rules.rules[-1])
    return CustomerScores(rule.name, rule, features, churn_probability, stats)


def merged_purchases(history: list[tuple[int, int]], live: Iterable[Purchase],
                     item_index: Mapping[str, int]) -> list[tuple[int, int]]:
    """(item index, ts) of the published history and the live purchases of known items."""
    out = list(history)
    for ts, item, _ in live:
        index = item_index.get(item) if item else None
        if index is not None:
            out.append((index, ts))
    return out


def due_now(purchases: list[tuple[int, int]], cycles: np.ndarray, now_ms: int, k: int, *,
            early: float = EARLY, late: float = LATE) -> list[tuple[int, float]]:
    """The buy-again list: (item index, dueness), closest to one cycle first."""
    return due_items(purchases, cycles, now_ms, k, early=early, late=late)


def too_recent(purchases: list[tuple[int, int]], cycles: np.ndarray, now_ms: int, *,
               early: float = EARLY) -> set[int]:
    """Consumables bought too recently to suggest again (the other placements hide them)."""
    if not purchases:
        return set()
    return not_yet_due(purchases, cycles, now_ms, early=early)


def due_reason(last_ms: int, cycle_days: float, now_ms: int) -> str:
    days = (now_ms - last_ms) / DAY_MS
    return f"bought {days:.0f} days ago; usually every {cycle_days:.0f} days"
