"""Planted customer types and repurchase cycles for the synthetic store (`customer_types=True`).

Each shopper gets a type that shapes *when* they shop over the generated year; the catalog's
consumables get a known cycle. The labels are returned beside the event log (for tests and
benchmarks to score segments, churn and buy-again against), never inside it.

- loyal: shops at a steady rate all year.
- vip: the same, three times as often, buying larger quantities.
- slipping: steady until a change point 60-120 days before the end, then the rate halves
  every 15 days.
- lost: steady until 200-330 days before the end, then never again.
- new: first visit in the last 30 days, steady since.

Consumable items re-buy on their category's cycle (14, 30 or 60 days, each item within ~8%
of it, each repeat within ~8% of the item's): the first purchase of an item by a shopper
starts, with probability 0.7, a chain of repeats that lasts while the shopper is active.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CUSTOMER_TYPES = ("loyal", "vip", "slipping", "lost", "new")
TYPE_SHARES = (0.40, 0.05, 0.20, 0.20, 0.15)
_RATE = np.array([1.0, 3.0, 1.0, 1.0, 1.0])  # sessions per active day, relative
LOYAL, VIP, SLIPPING, LOST, NEW = range(len(CUSTOMER_TYPES))
CATEGORY_CYCLES_DAYS = (14, 30, 60)
SLIP_HALF_LIFE_DAYS = 15.0
MIN_DAYS = 365
CHAIN_PROBABILITY = 0.4  # a first purchase of a consumable starts a routine of repeats
DAY_MS = 86_400_000


@dataclass
class Plant:
    customer_type: np.ndarray  # int8 per user, code into CUSTOMER_TYPES
    active_until: np.ndarray  # float64 per user: day after which their routine purchases stop
    session_user: np.ndarray  # int32 per session
    session_day: np.ndarray  # int64 per session, 0..days-1


def plant_customers(rng: np.random.Generator, n_users: int, n_sessions: int, days: int) -> Plant:
    """Types, and each session's shopper and day drawn from its shopper's timeline."""
    if days < MIN_DAYS:
        raise ValueError(f"planted customer types need a year of events (days >= {MIN_DAYS}), got {days}")
    kind = rng.choice(len(CUSTOMER_TYPES), size=n_users, p=TYPE_SHARES).astype(np.int8)
    d = float(days)
    start = np.where(kind == NEW, d - rng.uniform(1, 30, n_users), 0.0)
    stop = np.where(kind == LOST, d - rng.uniform(200, 330, n_users), d)
    change = np.where(kind == SLIPPING, d - rng.uniform(60, 120, n_users), d)
    tau = SLIP_HALF_LIFE_DAYS / np.log(2)
    tail = np.where(kind == SLIPPING, tau * (1 - np.exp(-(d - change) / tau)), 0.0)
    # Expected sessions ∝ rate × active days (the decaying tail counts its integral).
    mass = np.minimum(stop, change) - start + tail
    weight = _RATE[kind] * rng.lognormal(0, 0.25, n_users) * mass
    user = rng.choice(n_users, size=n_sessions, p=weight / weight.sum()).astype(np.int32)
    u = rng.random(n_sessions)
    lo, hi = start[user], np.minimum(stop, change)[user]
    t = lo + u * (hi - lo)
    # Slipping shoppers: a session falls in the decaying tail with the tail's share of the mass.
    slip = kind[user] == SLIPPING
    in_tail = slip & (rng.random(n_sessions) < tail[user] / mass[user])
    v = rng.random(n_sessions)
    t_tail = change[user] - tau * np.log1p(-v * (1 - np.exp(-(d - change[user]) / tau)))
    t = np.where(in_tail, t_tail, t)
    until = np.where(kind == SLIPPING, change + SLIP_HALF_LIFE_DAYS, stop)
    day = np.clip(np.floor(t), 0, days - 1).astype(np.int64)
    return Plant(customer_type=kind, active_until=until, session_user=user, session_day=day)


def item_cycles(rng: np.random.Generator, item_cat: np.ndarray, consumable: np.ndarray,
                n_categories: int) -> np.ndarray:
    """Cycle in days per item (NaN for items that are not consumables)."""
    base = rng.choice(CATEGORY_CYCLES_DAYS, size=n_categories).astype(np.float64)
    cycle = base[item_cat] * rng.lognormal(0, 0.08, item_cat.size)
    return np.where(consumable, cycle, np.nan)


def repeat_purchases(rng: np.random.Generator, plant: Plant, buy_user: np.ndarray,
                     buy_item: np.ndarray, buy_ts: np.ndarray, cycles: np.ndarray,
                     start_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Repeat purchases of consumables: (index into the given purchases, ts) of each repeat."""
    cons = np.flatnonzero(np.isfinite(cycles[buy_item]))
    # Only a shopper's first purchase of an item starts a chain (one routine per item).
    order = cons[np.lexsort((buy_ts[cons], buy_item[cons], buy_user[cons]))]
    pair = buy_user[order].astype(np.int64) * (cycles.size + 1) + buy_item[order]
    first = order[np.r_[True, pair[1:] != pair[:-1]]] if order.size else order
    first = first[rng.random(first.size) < CHAIN_PROBABILITY]
    cycle_ms = cycles[buy_item[first]] * DAY_MS
    until_ms = start_ms + plant.active_until[buy_user[first]] * DAY_MS
    n = np.clip(np.floor((until_ms - buy_ts[first]) / cycle_ms), 0, None).astype(np.int64)
    src = np.repeat(first, n)
    k = np.arange(src.size) - np.repeat(np.cumsum(n) - n, n) + 1
    c = np.repeat(cycle_ms, n)
    ts = buy_ts[src] + k * c + rng.normal(0, 0.08, src.size) * c
    keep = ts < np.repeat(until_ms, n)
    return src[keep], ts[keep].astype(np.int64)
