"""Customer statistics and named segments from purchases, for every purchasing customer at once.

The statistics are those of `models/rfm.py` (first and last purchase, orders = distinct
purchase days, spend = price × quantity, both all time and in the rule set's windows) computed
from the whole log; the segments are the rule set's (`models/segments.py`), evaluated by the
same evaluator the server runs live. The result is the artifact's segments file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.events import EventType
from models.rfm import DAY_MS, RfmEdges, customer_features_many
from models.segments import SegmentRules
from training.eventlog import TYPE_CODE, EventLog

_PURCHASE = TYPE_CODE[EventType.PURCHASE.value]
SEGMENTS_FORMAT = 2  # 1: labels and quintiles only (no statistics, rules or edges)


@dataclass
class PurchaseStats:
    """Per purchasing customer (rows of `users`, user codes in ascending order)."""

    as_of_ms: int
    users: np.ndarray
    first_ms: np.ndarray
    last_ms: np.ndarray
    orders: np.ndarray
    spend: np.ndarray
    window_orders: dict[int, np.ndarray]
    window_spend: dict[int, np.ndarray]

    def features(self, edges: RfmEdges | None = None) -> dict[str, np.ndarray]:
        return customer_features_many(self.first_ms, self.last_ms, self.orders, self.spend,
                                      self.window_orders, self.window_spend, self.as_of_ms, edges)


def purchase_stats(log: EventLog, as_of_ms: int, windows: tuple[int, ...]) -> PurchaseStats:
    """Statistics of the purchases made at or before `as_of_ms`."""
    buys = log.select((log.type == _PURCHASE) & (log.item >= 0) & (log.ts <= as_of_ms))
    amount = np.nan_to_num(buys.price.astype(np.float64)) * buys.quantity
    # One order per customer and UTC day, identified by one int64 key.
    day = buys.ts // DAY_MS
    day0 = int(day.min()) if day.size else 0
    span = int(day.max()) - day0 + 1 if day.size else 1
    keys, inverse = np.unique(buys.user.astype(np.int64) * span + (day - day0), return_inverse=True)
    order_ts = np.zeros(keys.size, np.int64)
    np.maximum.at(order_ts, inverse, buys.ts)
    order_amount = np.bincount(inverse, weights=amount, minlength=keys.size)
    users, order_user = np.unique(keys // span, return_inverse=True)
    n = users.size
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, order_user, order_ts)
    last = np.zeros(n, np.int64)
    np.maximum.at(last, order_user, order_ts)
    w_orders, w_spend = {}, {}
    for d in windows:
        inside = order_ts > as_of_ms - d * DAY_MS
        w_orders[d] = np.bincount(order_user[inside], minlength=n)
        w_spend[d] = np.bincount(order_user[inside], weights=order_amount[inside], minlength=n)
    return PurchaseStats(as_of_ms, users.astype(np.int32), first, last,
                         np.bincount(order_user, minlength=n), np.bincount(order_user, order_amount, n),
                         w_orders, w_spend)


def segment_customers(log: EventLog, rules: SegmentRules, as_of_ms: int | None = None,
                      churn_probability: np.ndarray | None = None) -> dict:
    """The segments file: every purchasing customer's statistics, R/F/M scores and segment,
    with the rules and score edges used (the server evaluates the same ones live).
    `churn_probability` (per user code, NaN = none) is published and readable by rules."""
    as_of = int(log.ts.max()) if as_of_ms is None and len(log) else int(as_of_ms or 0)
    stats = purchase_stats(log, as_of, rules.windows)
    feats = stats.features()
    w = rules.rfm_window_days
    edges = RfmEdges.fit(feats["recency_days"], feats[f"orders_{w}d"], feats[f"spend_{w}d"], w)
    feats = stats.features(edges)
    if churn_probability is not None:
        feats["churn_probability"] = churn_probability[stats.users].astype(np.float64)
    segment = rules.assign_many(feats)
    out = {
        "format": SEGMENTS_FORMAT,
        "as_of_ms": as_of,
        "users": [log.user_ids[u] for u in stats.users.tolist()],
        "first_purchase_ms": stats.first_ms.tolist(),
        "last_purchase_ms": stats.last_ms.tolist(),
        "orders": stats.orders.tolist(),
        "spend": np.round(stats.spend, 2).tolist(),
        "windows_days": list(rules.windows),
        "r": feats["r"].astype(np.int8).tolist(),
        "f": feats["f"].astype(np.int8).tolist(),
        "m": feats["m"].astype(np.int8).tolist(),
        "segment": segment.tolist(),
        "churn_probability": (np.round(feats["churn_probability"], 4).tolist()
                              if churn_probability is not None else [math.nan] * stats.users.size),
        "rules": rules.as_dict(),
        "rfm_edges": edges.as_dict(),
    }
    for d in rules.windows:
        out[f"orders_{d}d"] = stats.window_orders[d].tolist()
        out[f"spend_{d}d"] = np.round(stats.window_spend[d], 2).tolist()
    return out


def segment_counts(segments: dict, rules: SegmentRules) -> dict[str, int]:
    """Customers per segment, in the rule set's order (empty segments included)."""
    names, counts = np.unique(np.asarray(segments["segment"], dtype=object), return_counts=True)
    found = dict(zip(names.tolist(), counts.tolist(), strict=True))
    return {name: int(found.get(name, 0)) for name in rules.names}


# -- the Spark engine's segments ----------------------------------------------------------------
# training/spark computes per-customer aggregates in Spark and publishes format-1 segments from
# them (labels from R and F quintiles, churn risk from each customer's own purchase rhythm); the
# rules-based format 2 above needs the event log in memory.


def _quintile(values: np.ndarray) -> np.ndarray:
    """1..5 by rank (ties share the lower score), 5 = highest value."""
    if values.size == 0:
        return values.astype(np.int8)
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return (1 + (5 * ranks) // values.size).astype(np.int8)


def _label(r: np.ndarray, f: np.ndarray) -> np.ndarray:
    labels = np.full(r.size, "regular", dtype=object)
    labels[(r <= 2) & (f <= 2)] = "hibernating"
    labels[(r <= 2) & (f >= 3)] = "at_risk"
    labels[(r >= 4) & (f == 1)] = "new"
    labels[f >= 4] = "loyal"
    labels[(r >= 4) & (f >= 4)] = "champions"
    return labels


def rfm_from_aggregates(user_ids: list[str], *, last: np.ndarray, first: np.ndarray,
                        frequency: np.ndarray, monetary: np.ndarray, now: int) -> dict:
    """The segments from per-customer purchase aggregates (newest and oldest purchase ts,
    distinct purchase days, spend), however they were computed (numpy here, Spark there)."""
    recency_days = (now - last) / DAY_MS
    repeat = frequency >= 2
    gap = np.where(repeat, (last - first) / DAY_MS / np.maximum(frequency - 1, 1), np.nan)
    typical = float(np.nanmedian(gap)) if repeat.any() else 30.0
    gap = np.where(repeat, gap, typical)
    risk = np.where(recency_days > 2 * gap, "high",
                    np.where(recency_days > gap, "medium", "low"))
    r = _quintile(-recency_days)
    f = _quintile(frequency.astype(np.float64))
    m = _quintile(monetary)
    return {
        "as_of_ms": now,
        "users": user_ids,
        "r": r.tolist(), "f": f.tolist(), "m": m.tolist(),
        "segment": _label(r, f).tolist(),
        "churn_risk": risk.tolist(),
        "recency_days": np.round(recency_days, 2).tolist(),
        "frequency": frequency.tolist(),
        "monetary": np.round(monetary, 2).tolist(),
    }
