"""Buy it again: which of a customer's past purchases are due now, from learned repurchase cycles.

The trainer learns each consumable's cycle (the median days between a customer's purchases of
it, or its category's when the item alone has too few) and publishes it with every customer's
purchase history in the artifact (`repurchase.npz`, see `history`). The server merges a
customer's published history with their live purchases and calls `due_items` for the
`buy_again` placement, and `not_yet_due` for the consumables other placements should still hide.

An item is *due* when the time since its last purchase is within [1 − early, 1 + late] of its
cycle; `dueness` = elapsed / cycle, so 1.0 is exactly one cycle after the last purchase.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

DAY_MS = 86_400_000
EARLY = 0.2  # due from 80% of the cycle...
LATE = 0.2  # ...to 120%: later than that the customer has likely bought it elsewhere


def _latest(purchases: Iterable[tuple[int, int]]) -> dict[int, int]:
    latest: dict[int, int] = {}
    for item, ts in purchases:
        if ts > latest.get(item, -1):
            latest[item] = ts
    return latest


def dueness(last_ms: int, cycle_days: float, now_ms: int) -> float:
    """Elapsed time since the last purchase over the cycle (NaN without a cycle)."""
    if not cycle_days > 0:  # NaN or 0: not a repeat item
        return math.nan
    return (now_ms - last_ms) / (cycle_days * DAY_MS)


def dueness_many(last_ms: np.ndarray, cycle_days: np.ndarray, now_ms: int) -> np.ndarray:
    """`dueness` for arrays (NaN where there is no cycle)."""
    cycle = np.where(cycle_days > 0, cycle_days, np.nan).astype(np.float64)
    return (now_ms - last_ms) / (cycle * DAY_MS)


def due_items(purchases: Iterable[tuple[int, int]], cycle_days: np.ndarray, now_ms: int, k: int,
              *, early: float = EARLY, late: float = LATE) -> list[tuple[int, float]]:
    """Up to `k` (item index, dueness) of the items due now, the closest to their cycle first.

    `purchases` are (item index, purchase ts in ms), in any order and with repeats (the latest
    purchase of an item counts); `cycle_days` is the artifact's per-item cycle (NaN = none)."""
    due = []
    for item, last in _latest(purchases).items():
        d = dueness(last, float(cycle_days[item]), now_ms)
        if 1 - early <= d <= 1 + late:
            due.append((abs(d - 1), item, d))
    due.sort()
    return [(item, d) for _, item, d in due[:k]]


def not_yet_due(purchases: Iterable[tuple[int, int]], cycle_days: np.ndarray, now_ms: int,
                *, early: float = EARLY) -> set[int]:
    """Items with a cycle bought too recently to suggest again (dueness below 1 − early)."""
    out = set()
    for item, last in _latest(purchases).items():
        d = dueness(last, float(cycle_days[item]), now_ms)
        if d < 1 - early:
            out.add(item)
    return out


def history(repurchase: Mapping[str, np.ndarray], user_row: int) -> list[tuple[int, int]]:
    """A customer's published purchases, (item index, last purchase ts ms) per item bought, from
    the artifact's `repurchase` arrays (`user_row` indexes the artifact's user ids)."""
    indptr = repurchase["user_indptr"]
    lo, hi = int(indptr[user_row]), int(indptr[user_row + 1])
    return list(zip(repurchase["items"][lo:hi].tolist(), repurchase["last_ms"][lo:hi].tolist(),
                    strict=True))
