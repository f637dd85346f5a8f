"""Repurchase cycles learned from the log, and every customer's purchase history, for buy-again.

A cycle is the median number of days between consecutive purchase days of one customer and one
item, over all customers: the median ignores the odd early re-buy and the months-long gap of a
customer who went elsewhere. An item with fewer than `min_item_intervals` such intervals takes
its category's median (over the category's consumables) if that has `min_category_intervals`;
only consumables get a cycle, so a fashion item bought twice doesn't become a routine.
"""

from __future__ import annotations

import numpy as np

from models.rfm import DAY_MS
from training.eventlog import TYPE_CODE, EventLog

_PURCHASE, _RETURN = TYPE_CODE["purchase"], TYPE_CODE["return"]
SOURCE_NONE, SOURCE_ITEM, SOURCE_CATEGORY = 0, 1, 2


def _purchase_days(log: EventLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (user, item, UTC day) purchases, sorted by user, item, time: (user, item, ts)."""
    buys = (log.type == _PURCHASE) & (log.item >= 0)
    user, item, ts = log.user[buys], log.item[buys], log.ts[buys]
    order = np.lexsort((ts, item, user))
    user, item, ts = user[order], item[order], ts[order]
    day = ts // DAY_MS
    new = np.r_[True, (user[1:] != user[:-1]) | (item[1:] != item[:-1]) | (day[1:] != day[:-1])]
    return user[new], item[new], ts[new]


def _group_median(groups: np.ndarray, values: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(median, count) of `values` per group id in 0..n_groups-1 (NaN where empty)."""
    order = np.lexsort((values, groups))
    groups, values = groups[order], values[order]
    count = np.bincount(groups, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    median = np.full(n_groups, np.nan)
    has = count > 0
    lo = start[has] + (count[has] - 1) // 2
    hi = start[has] + count[has] // 2
    median[has] = (values[lo] + values[hi]) / 2
    return median, count


def learn_cycles(log: EventLog, consumable: np.ndarray, *, min_item_intervals: int = 5,
                 min_category_intervals: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(cycle in days per item, float32, NaN = none; source per item: 0 none, 1 item, 2 category)."""
    user, item, ts = _purchase_days(log)
    same = (user[1:] == user[:-1]) & (item[1:] == item[:-1])
    gap_item = item[1:][same]
    gap_days = np.diff(ts)[same] / DAY_MS
    own, own_n = _group_median(gap_item, gap_days, log.n_items)
    categories = sorted({c for c in log.item_category if c is not None})
    code = {c: i for i, c in enumerate(categories)}
    item_cat = np.array([code.get(c, len(categories)) if c is not None else len(categories)
                         for c in log.item_category], dtype=np.int64)
    pooled = consumable[gap_item]
    cat_median, cat_n = _group_median(item_cat[gap_item[pooled]], gap_days[pooled], len(categories) + 1)
    cat_median[len(categories)] = np.nan  # items without a category have no fallback
    use_own = consumable & (own_n >= min_item_intervals)
    use_cat = consumable & ~use_own & (cat_n[item_cat] >= min_category_intervals) & np.isfinite(
        cat_median[item_cat])
    cycle = np.where(use_own, own, np.where(use_cat, cat_median[item_cat], np.nan)).astype(np.float32)
    source = np.where(use_own, SOURCE_ITEM, np.where(use_cat, SOURCE_CATEGORY, SOURCE_NONE)).astype(np.int8)
    return cycle, source


def purchase_history(log: EventLog) -> dict[str, np.ndarray]:
    """Per customer (rows of the log's user ids), the items they bought and kept (fully returned
    pairs are dropped): last purchase ts and number of purchase days, as CSR arrays."""
    user, item, ts = _purchase_days(log)
    pair_start = np.r_[True, (user[1:] != user[:-1]) | (item[1:] != item[:-1])]
    first = np.flatnonzero(pair_start)
    last = np.r_[first[1:], user.size] - 1
    p_user, p_item, p_last = user[first], item[first], ts[last]
    p_orders = (last - first + 1).astype(np.int32)
    returns = (log.type == _RETURN) & (log.item >= 0)
    if returns.any():
        n_items = np.int64(log.n_items)
        bought_q = (log.type == _PURCHASE) & (log.item >= 0)
        key = p_user.astype(np.int64) * n_items + p_item

        def qty(mask: np.ndarray) -> np.ndarray:
            k = log.user[mask].astype(np.int64) * n_items + log.item[mask]
            uniq, inv = np.unique(k, return_inverse=True)
            total = np.bincount(inv, weights=log.quantity[mask], minlength=uniq.size)
            pos = np.minimum(np.searchsorted(uniq, key), uniq.size - 1)
            return np.where(uniq[pos] == key, total[pos], 0.0)
        kept = qty(bought_q) > qty(returns)
        p_user, p_item, p_last, p_orders = p_user[kept], p_item[kept], p_last[kept], p_orders[kept]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(p_user, minlength=log.n_users))]).astype(np.int64)
    return {"user_indptr": indptr, "items": p_item.astype(np.int32), "last_ms": p_last.astype(np.int64),
            "orders": p_orders}
