"""Customer segments from purchases: RFM scores (recency, frequency, monetary) and churn risk.

Scores are quintiles (1–5) among purchasing customers, as of the newest event in the log. A
customer is at high churn risk when the time since their last purchase exceeds twice their own
typical gap between purchase days (or, for one-time buyers, twice the median gap of all repeat
buyers): the rule follows each customer's own rhythm instead of a fixed number of days.
"""

from __future__ import annotations

import numpy as np

from models.events import EventType
from training.eventlog import TYPE_CODE, EventLog

_PURCHASE = TYPE_CODE[EventType.PURCHASE.value]
DAY_MS = 86_400_000


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


def rfm_segments(log: EventLog) -> dict:
    """Per purchasing customer: r, f, m scores, segment label, churn risk (as parallel lists)."""
    buys = log.select((log.type == _PURCHASE) & (log.item >= 0))
    now = int(log.ts.max()) if len(log) else 0
    if len(buys) == 0:
        return {"as_of_ms": now, "users": [], "r": [], "f": [], "m": [], "segment": [], "churn_risk": []}
    users, inverse = np.unique(buys.user, return_inverse=True)
    last = np.zeros(users.size, np.int64)
    np.maximum.at(last, inverse, buys.ts)
    # Frequency counts distinct purchase days: one basket of five items is one visit.
    day = buys.ts // DAY_MS - buys.ts.min() // DAY_MS
    span = int(day.max()) + 1
    visits = np.unique(inverse.astype(np.int64) * span + day)  # distinct (customer, day), as one int
    frequency = np.bincount(visits // span, minlength=users.size)
    first = np.full(users.size, np.iinfo(np.int64).max)
    np.minimum.at(first, inverse, buys.ts)
    spend = np.nan_to_num(buys.price.astype(np.float64)) * buys.quantity
    monetary = np.bincount(inverse, weights=spend, minlength=users.size)
    return rfm_from_aggregates([log.user_ids[u] for u in users.tolist()], last=last, first=first,
                               frequency=frequency, monetary=monetary, now=now)


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
