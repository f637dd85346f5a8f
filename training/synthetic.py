"""A synthetic storefront: catalog, shoppers with latent tastes, and their event stream.

Real stores can't ship their data, so the demo, the tests and the benchmarks use this. The
structure is learnable on purpose: every category is split into *styles* (think brand × price
tier), each shopper prefers a few categories and one style within each, and sessions mostly
stay inside one (category, style) block. Shoppers who share a style share items, which is the
item-level co-preference a collaborative-filtering model can learn and popularity cannot.

Everything is vectorized numpy: 10M events over 1M items take well under a minute.

With `customer_types=True` (a year of events or more), shoppers also follow planted types
(loyal, VIP, slipping, lost, new) and consumables re-buy on known cycles
(`training/synthetic_customers.py`); the labels come back beside the log, not in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.events import EventType
from training.eventlog import TYPE_CODE, EventLog
from training.synthetic_customers import VIP, item_cycles, plant_customers, repeat_purchases

DEPARTMENTS = ("fashion", "sports", "home", "electronics", "beauty", "grocery", "toys", "books")
# Departments whose items are re-bought on a cycle (a past purchase must not exclude them).
CONSUMABLE_DEPARTMENTS = frozenset({"beauty", "grocery"})
DEFAULT_START_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
DAY_MS = 86_400_000

_VIEW, _CART, _BUY, _RET = (TYPE_CODE[t.value] for t in (
    EventType.VIEW, EventType.ADD_TO_CART, EventType.PURCHASE, EventType.RETURN))
_CATVIEW, _SEARCH = TYPE_CODE[EventType.CATEGORY_VIEW.value], TYPE_CODE[EventType.SEARCH.value]


@dataclass
class SyntheticStore:
    log: EventLog
    session: np.ndarray  # int64 session code per event (aligned with log)
    channel: np.ndarray  # int8 code into CHANNELS per event
    item_style: np.ndarray  # int32 style per item (global style id)
    user_styles: np.ndarray  # int32 (n_users, FAVOURITES): each shopper's favourite styles
    # With customer_types=True: each shopper's planted type (code into
    # synthetic_customers.CUSTOMER_TYPES) and each item's repurchase cycle (days, NaN if none).
    customer_type: np.ndarray | None = None
    item_cycle_days: np.ndarray | None = None

    @property
    def categories(self) -> list[str]:
        return sorted({c for c in self.log.item_category if c is not None})


CHANNELS = ("web", "app", "store")
FAVOURITES = 3


def _category_names(n_categories: int) -> list[str]:
    return [f"{DEPARTMENTS[c % len(DEPARTMENTS)]}/c{c:03d}" for c in range(n_categories)]


def generate_store(
    *,
    n_items: int = 5_000,
    n_users: int = 2_000,
    n_events: int = 200_000,
    seed: int = 0,
    days: int = 56,
    start_ms: int = DEFAULT_START_MS,
    customer_types: bool = False,
) -> SyntheticStore:
    """Generate a store deterministically from `seed`. Sizes are targets: the event count is
    trimmed to exactly `n_events` (the newest events are the ones cut). `customer_types`
    plants shopper types and consumable cycles (needs days >= 365)."""
    if min(n_items, n_users, n_events) < 1 or days < 1:
        raise ValueError("n_items, n_users, n_events and days must be positive")
    rng = np.random.default_rng(seed)
    # The planted draws come from their own stream: the default store stays draw for draw the same.
    plant_rng = np.random.default_rng([seed, 1]) if customer_types else None
    n_cat = int(np.clip(round(np.sqrt(n_items) / 2.5), 4, 64))
    cat_names = _category_names(n_cat)

    # Catalog: categories of skewed size, styles of ~40 items, long-tailed item appeal.
    cat_weight = rng.dirichlet(np.full(n_cat, 2.0))
    item_cat = np.sort(rng.choice(n_cat, size=n_items, p=cat_weight)).astype(np.int32)
    cat_start = np.searchsorted(item_cat, np.arange(n_cat + 1)).astype(np.int64)
    cat_size = np.diff(cat_start)
    styles_per_cat = np.maximum(1, cat_size // 40)
    style_base = np.concatenate([[0], np.cumsum(styles_per_cat)]).astype(np.int64)
    within = np.arange(n_items) - cat_start[item_cat]
    item_style = (style_base[item_cat] + within * styles_per_cat[item_cat] // np.maximum(
        cat_size[item_cat], 1)).astype(np.int32)
    n_style = int(style_base[-1])
    style_start = np.searchsorted(item_style, np.arange(n_style + 1)).astype(np.int64)
    appeal = rng.pareto(1.2, n_items) + 1.0  # Zipf-like item appeal
    price = (np.exp(rng.normal(3.0, 0.6, n_cat))[item_cat] * rng.lognormal(0, 0.35, n_items))
    in_stock = rng.random(n_items) > 0.03
    dept = np.array([DEPARTMENTS[c % len(DEPARTMENTS)] for c in range(n_cat)])
    consumable = np.isin(dept[item_cat], list(CONSUMABLE_DEPARTMENTS)) & (rng.random(n_items) < 0.6)

    # Cumulative appeal, contiguous per category and per style: sampling an item from a block
    # is one searchsorted on the global cumulative sum.
    cum = np.cumsum(appeal)

    def sample_in_block(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
        lo = np.where(start > 0, cum[np.maximum(start - 1, 0)], 0.0)
        hi = cum[stop - 1]
        x = lo + rng.random(start.shape[0]) * (hi - lo)
        return np.minimum(np.searchsorted(cum, x, side="right"), stop - 1).astype(np.int32)

    # Shoppers: a few favourite categories (by category size) and one style in each.
    fav_cat = rng.choice(n_cat, size=(n_users, FAVOURITES), p=cat_weight)
    user_styles = (style_base[fav_cat] + (rng.random((n_users, FAVOURITES)) ** 1.5 *
                   styles_per_cat[fav_cat]).astype(np.int64)).astype(np.int32)
    fav_weight = np.array([0.6, 0.3, 0.1])
    activity = rng.lognormal(0, 1.0, n_users)
    activity /= activity.sum()

    # Sessions: sized so that the expected event count slightly exceeds n_events.
    n_sessions = max(1, int(n_events / 6.0 * 1.1))
    s_user = rng.choice(n_users, size=n_sessions, p=activity).astype(np.int32)
    plant = plant_customers(plant_rng, n_users, n_sessions, days) if plant_rng else None
    if plant is not None:
        s_user = plant.session_user
    s_fav = rng.choice(FAVOURITES, size=n_sessions, p=fav_weight)
    explore = rng.random(n_sessions) < 0.15
    s_style = user_styles[s_user, s_fav].astype(np.int64)
    s_cat = np.where(explore, rng.choice(n_cat, size=n_sessions, p=cat_weight),
                     np.searchsorted(style_base, s_style, side="right") - 1)
    day = rng.integers(0, days, n_sessions) if plant is None else plant.session_day
    hour_p = np.array([1, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 6, 7, 7, 6, 6, 6, 7, 9, 10, 10, 8, 5, 2], float)
    hour = rng.choice(24, size=n_sessions, p=hour_p / hour_p.sum())
    s_start = start_ms + day * DAY_MS + hour * 3_600_000 + rng.integers(0, 3_600_000, n_sessions)
    s_channel = rng.choice(3, size=n_sessions, p=[0.55, 0.35, 0.10]).astype(np.int8)
    n_views = 1 + rng.geometric(0.25, n_sessions)

    # Views: mostly from the session's style block, else anywhere in its category.
    v_sess = np.repeat(np.arange(n_sessions), n_views)
    in_style = (~explore[v_sess]) & (rng.random(v_sess.size) < 0.75)
    start = np.where(in_style, style_start[s_style[v_sess]], cat_start[s_cat[v_sess]])
    stop = np.where(in_style, style_start[s_style[v_sess] + 1], cat_start[s_cat[v_sess] + 1])
    v_item = sample_in_block(start, stop)
    # Each view comes 5 s to 2 min after the previous one in its session.
    gaps = np.cumsum(rng.integers(5_000, 120_000, v_sess.size))
    first = np.concatenate([[0], np.cumsum(n_views)[:-1]])
    v_ts = s_start[v_sess] + 30_000 + gaps - np.repeat(gaps[first], n_views)

    # Funnel: some views become carts, some carts purchases, a few purchases returns.
    carted = rng.random(v_item.size) < 0.12 * np.where(in_stock[v_item], 1.0, 0.0)
    c_idx = np.flatnonzero(carted)
    bought = c_idx[rng.random(c_idx.size) < 0.55]
    returned = bought[rng.random(bought.size) < 0.06]
    cart_ts = v_ts[c_idx] + rng.integers(2_000, 60_000, c_idx.size)
    buy_ts = v_ts[bought] + rng.integers(120_000, 900_000, bought.size)
    ret_ts = v_ts[returned] + rng.integers(3, 20, returned.size) * DAY_MS

    # Consumables are re-bought on a per-item cycle until the window ends.
    cons = bought[consumable[v_item[bought]]]
    cycle = (rng.integers(10, 30, cons.size) * DAY_MS).astype(np.int64)
    end = start_ms + days * DAY_MS
    repeats = np.clip((end - v_ts[cons]) // cycle, 0, 8) * (rng.random(cons.size) < 0.7)
    r_src = np.repeat(cons, repeats)
    r_k = np.arange(r_src.size) - np.repeat(np.cumsum(repeats) - repeats, repeats) + 1
    r_ts = v_ts[r_src] + np.repeat(cycle, repeats) * r_k + rng.integers(0, DAY_MS, r_src.size)
    cycles = None
    if plant is not None:  # planted: known cycles per item, repeats while the shopper is active
        cycles = item_cycles(plant_rng, item_cat, consumable, n_cat)
        src, r_ts = repeat_purchases(plant_rng, plant, s_user[v_sess[bought]], v_item[bought],
                                     buy_ts, cycles, start_ms)
        r_src = bought[src]

    # Non-item events: a category page at some session starts, a few searches.
    cv_sess = np.flatnonzero(rng.random(n_sessions) < 0.3)
    se_sess = np.flatnonzero(rng.random(n_sessions) < 0.1)

    def block(src_sess, items, ts, type_code):
        return (src_sess, items, ts, np.full(len(items), type_code, np.int8))

    parts = [
        block(v_sess, v_item, v_ts, _VIEW),
        block(v_sess[c_idx], v_item[c_idx], cart_ts, _CART),
        block(v_sess[bought], v_item[bought], buy_ts, _BUY),
        block(v_sess[returned], v_item[returned], ret_ts, _RET),
        block(v_sess[r_src], v_item[r_src], r_ts, _BUY),
        block(cv_sess, np.full(cv_sess.size, -1, np.int32), s_start[cv_sess], _CATVIEW),
        block(se_sess, np.full(se_sess.size, -1, np.int32), s_start[se_sess] + 1_000, _SEARCH),
    ]
    sess = np.concatenate([p[0] for p in parts]).astype(np.int64)
    item = np.concatenate([p[1] for p in parts]).astype(np.int32)
    ts = np.concatenate([p[2] for p in parts]).astype(np.int64)
    typ = np.concatenate([p[3] for p in parts])
    order = np.argsort(ts, kind="stable")[:n_events]
    if plant is not None:  # the year ends at `end` (no late returns); trim at random, not the end
        keep = np.flatnonzero(ts < end)
        if keep.size > n_events:
            keep = np.sort(plant_rng.choice(keep, n_events, replace=False))
        order = keep[np.argsort(ts[keep], kind="stable")]
    sess, item, ts, typ = sess[order], item[order], ts[order], typ[order]
    qty = np.ones(ts.size, np.int32)
    buy_like = (typ == _BUY) | (typ == _RET)
    qty[buy_like] = 1 + (rng.random(int(buy_like.sum())) < 0.1)
    if plant is not None:  # VIPs buy larger quantities
        vip_buy = buy_like & (plant.customer_type[s_user[sess]] == VIP)
        qty[vip_buy] = plant_rng.integers(1, 4, int(vip_buy.sum()))
    ev_price = np.where(item >= 0, price[np.maximum(item, 0)], np.nan).astype(np.float32)

    item_category: list[str | None] = [cat_names[c] for c in item_cat]
    log = EventLog(
        user=s_user[sess],
        item=item,
        type=typ,
        ts=ts,
        quantity=qty,
        price=ev_price,
        user_ids=[f"u{u:07d}" for u in range(n_users)],
        item_ids=[f"i{i:07d}" for i in range(n_items)],
        item_category=item_category,
        item_price=price.astype(np.float32),
        item_in_stock=in_stock,
        item_consumable=consumable,
    )
    return SyntheticStore(
        log=log,
        session=sess,
        channel=s_channel[sess],
        item_style=item_style,
        user_styles=user_styles,
        customer_type=None if plant is None else plant.customer_type,
        item_cycle_days=cycles,
    )
