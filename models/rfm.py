"""A customer's purchase statistics (recency, frequency, monetary), kept up to date per purchase,
and the features segment rules (`models/segments.py`) read from them.

The trainer computes the statistics of every customer from the event log and publishes them
with the RFM score edges (segments file of the artifact); the server starts from a customer's
published statistics, applies `record_purchase` for every purchase event after them, and
evaluates the rules on `customer_features(stats, now_ms, edges)`.

An *order* is a distinct UTC purchase day of a customer (event logs carry no order id; a basket
of five items is one order, not five). Windowed counts (`orders_<N>d`) are counted as of the
moment they were computed plus the purchases recorded since; a purchase that slides out of a
window between two trainings is still counted until the next one, except that a customer
whose last purchase is older than the window has none in it (that case is exact).

R, F and M scores are 1..5 against the quintile edges of all purchasing customers at training
time (F: orders in the RFM window, M: spend in it), so one customer is scored live without
ranking everyone again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class CustomerStats:
    first_purchase_ms: int
    last_purchase_ms: int
    orders: int  # distinct purchase days, all time
    spend: float  # price × quantity, all time
    window_orders: dict[int, int] = field(default_factory=dict)  # days -> orders in the window
    window_spend: dict[int, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"first_purchase_ms": self.first_purchase_ms, "last_purchase_ms": self.last_purchase_ms,
                "orders": self.orders, "spend": self.spend,
                "window_orders": {str(d): n for d, n in self.window_orders.items()},
                "window_spend": {str(d): s for d, s in self.window_spend.items()}}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CustomerStats:
        return cls(int(raw["first_purchase_ms"]), int(raw["last_purchase_ms"]), int(raw["orders"]),
                   float(raw["spend"]),
                   {int(d): int(n) for d, n in raw.get("window_orders", {}).items()},
                   {int(d): float(s) for d, s in raw.get("window_spend", {}).items()})


def record_purchase(stats: CustomerStats | None, ts_ms: int, amount: float,
                    windows: Iterable[int]) -> CustomerStats:
    """The statistics after one purchase event of `amount` (price × quantity) at `ts_ms`.

    A purchase on the UTC day of the last one belongs to the same order (spend grows, orders
    don't). `windows` are the rule set's windows (`SegmentRules.windows`). Published statistics
    already hold the purchases up to the segments file's `as_of_ms`: apply only later ones."""
    amount = float(amount) if amount and math.isfinite(amount) else 0.0
    if stats is None:
        return CustomerStats(ts_ms, ts_ms, 1, amount, {d: 1 for d in windows}, {d: amount for d in windows})
    new_order = int(ts_ms // DAY_MS != stats.last_purchase_ms // DAY_MS)
    orders = {d: stats.window_orders.get(d, 0) + new_order for d in windows}
    spend = {d: stats.window_spend.get(d, 0.0) + amount for d in windows}
    return replace(stats, first_purchase_ms=min(stats.first_purchase_ms, ts_ms),
                   last_purchase_ms=max(stats.last_purchase_ms, ts_ms), orders=stats.orders + new_order,
                   spend=stats.spend + amount, window_orders=orders, window_spend=spend)


@dataclass(frozen=True)
class RfmEdges:
    """Quintile edges (4 ascending values each) that turn recency, orders and spend into 1..5."""

    recency_days: tuple[float, ...]
    orders: tuple[float, ...]
    spend: tuple[float, ...]
    window_days: int = 365

    def as_dict(self) -> dict[str, Any]:
        return {"recency_days": list(self.recency_days), "orders": list(self.orders),
                "spend": list(self.spend), "window_days": self.window_days}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RfmEdges:
        return cls(tuple(raw["recency_days"]), tuple(raw["orders"]), tuple(raw["spend"]),
                   int(raw.get("window_days", 365)))

    @classmethod
    def fit(cls, recency_days: np.ndarray, orders: np.ndarray, spend: np.ndarray,
            window_days: int) -> RfmEdges:
        """The quintile edges of the given customers' values."""
        q = [0.2, 0.4, 0.6, 0.8]

        def edges(x: np.ndarray) -> tuple[float, ...]:
            x = x[np.isfinite(x)]
            return tuple(float(v) for v in np.quantile(x, q)) if x.size else (0.0,) * 4
        return cls(edges(recency_days), edges(orders), edges(spend), window_days)

    def scores(self, recency_days, orders, spend):
        """(r, f, m), 1..5, for scalars or arrays. A value equal to an edge takes the worse
        score, except that recency ties take the better one (fewer days is better)."""
        r = 5 - np.searchsorted(self.recency_days, recency_days, side="left")
        f = 1 + np.searchsorted(self.orders, orders, side="left")
        m = 1 + np.searchsorted(self.spend, spend, side="left")
        return r, f, m


def customer_features(stats: CustomerStats | None, now_ms: int, edges: RfmEdges | None = None,
                      windows: Iterable[int] = ()) -> dict[str, float]:
    """The features segment rules read, for one customer at `now_ms` (None: never bought).

    `windows` adds `orders_<N>d`/`spend_<N>d` for windows the statistics don't carry (as 0)."""
    if stats is None:
        out = {"recency_days": math.inf, "tenure_days": math.inf, "orders": 0.0, "spend": 0.0}
        for d in {*windows, *(() if edges is None else (edges.window_days,))}:
            out[f"orders_{d}d"] = out[f"spend_{d}d"] = 0.0
        if edges is not None:
            out["r"] = out["f"] = out["m"] = 0.0
        return out
    recency = max(now_ms - stats.last_purchase_ms, 0) / DAY_MS
    out = {"recency_days": recency, "tenure_days": max(now_ms - stats.first_purchase_ms, 0) / DAY_MS,
           "orders": float(stats.orders), "spend": float(stats.spend)}
    for d in {*windows, *stats.window_orders, *(() if edges is None else (edges.window_days,))}:
        inside = recency <= d  # the last purchase left the window: nothing is in it any more
        out[f"orders_{d}d"] = float(stats.window_orders.get(d, 0)) if inside else 0.0
        out[f"spend_{d}d"] = float(stats.window_spend.get(d, 0.0)) if inside else 0.0
    if edges is not None:
        w = edges.window_days
        r, f, m = edges.scores(recency, out[f"orders_{w}d"], out[f"spend_{w}d"])
        out["r"], out["f"], out["m"] = float(r), float(f), float(m)
    return out


def customer_features_many(first_ms: np.ndarray, last_ms: np.ndarray, orders: np.ndarray,
                           spend: np.ndarray, window_orders: Mapping[int, np.ndarray],
                           window_spend: Mapping[int, np.ndarray], now_ms: int,
                           edges: RfmEdges | None = None) -> dict[str, np.ndarray]:
    """`customer_features` for arrays of purchasing customers (the trainer's path)."""
    recency = np.maximum(now_ms - last_ms, 0) / DAY_MS
    out = {"recency_days": recency, "tenure_days": np.maximum(now_ms - first_ms, 0) / DAY_MS,
           "orders": orders.astype(np.float64), "spend": spend.astype(np.float64)}
    for d in window_orders:
        inside = recency <= d
        out[f"orders_{d}d"] = np.where(inside, window_orders[d], 0).astype(np.float64)
        out[f"spend_{d}d"] = np.where(inside, window_spend[d], 0.0).astype(np.float64)
    if edges is not None:
        w = edges.window_days
        r, f, m = edges.scores(recency, out[f"orders_{w}d"], out[f"spend_{w}d"])
        out["r"], out["f"], out["m"] = (x.astype(np.float64) for x in (r, f, m))
    return out


def published_stats(segments: Mapping[str, Any], row: int) -> CustomerStats | None:
    """Row `row` of an artifact's segments file as CustomerStats (None for files written before
    statistics were published)."""
    if "last_purchase_ms" not in segments:
        return None
    windows = [int(d) for d in segments["windows_days"]]
    return CustomerStats(
        int(segments["first_purchase_ms"][row]), int(segments["last_purchase_ms"][row]),
        int(segments["orders"][row]), float(segments["spend"][row]),
        {d: int(segments[f"orders_{d}d"][row]) for d in windows},
        {d: float(segments[f"spend_{d}d"][row]) for d in windows})
