"""Trending counters: forward-decayed scores per stream shard, merged on read.

An event adds `w · 2^((now - period_start)/half_life)` to its shard's sorted set of the current
period (shard.lua); reading scales scores back to "now". Periods last 16 half-lives so
increments stay below 2^16·w (no float overflow, no rescaling job); a read merges the current
and the previous period of every shard. A shopper's events all go to one shard, so an item's
score is spread over the shards its shoppers hash to: the read sums each shard's top `n`, which
is exact for every item in each shard's top and close to it below (the lists are read by a
background refresh, `server/recommend/trending.py`, never per request).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from server.settings import RedisSettings
from server.store.keys import Keys
from server.store.records import StoreUnavailable
from server.store.scripts import pipeline
from server.store.wire import ReplyError

PERIOD_HALF_LIVES = 16


@dataclass(frozen=True)
class TrendingClock:
    half_life_s: float

    @property
    def period_ms(self) -> int:
        return int(PERIOD_HALF_LIVES * self.half_life_s * 1000)

    def period(self, now_ms: int) -> int:
        return now_ms // self.period_ms

    def increment_scale(self, now_ms: int) -> float:
        """The factor an event's weight is multiplied by when added at `now_ms`."""
        start = self.period(now_ms) * self.period_ms
        return 2.0 ** ((now_ms - start) / (self.half_life_s * 1000))

    def read_factor(self, period: int, now_ms: int) -> float:
        """Scales a period's stored scores back to `now_ms`."""
        return math.pow(2.0, -(now_ms - period * self.period_ms) / (self.half_life_s * 1000))


class TrendingStore:
    def __init__(self, wire, settings: RedisSettings):
        self.wire, self.settings = wire, settings
        self.keys = Keys(settings.prefix, settings.stream_shards)
        self.clock = TrendingClock(settings.trending_half_life_s)

    async def top(self, *, category: str | None, n: int, now_ms: int,
                  timeout_s: float | None = None) -> list[tuple[str, float]]:
        """The `n` items with the most decayed live activity, overall or in one category.
        Raises StoreUnavailable."""
        return (await self.top_many([category], n=n, now_ms=now_ms, timeout_s=timeout_s))[category]

    async def top_many(self, categories: list[str | None], *, n: int, now_ms: int,
                       timeout_s: float | None = None) -> dict[str | None, list[tuple[str, float]]]:
        """`top` for several lists (None: overall) in one pipeline. Raises StoreUnavailable."""
        if n <= 0:
            return {c: [] for c in categories}
        period = self.clock.period(now_ms)
        reads = [(c, p, ("ZREVRANGE", self.keys.trending(shard, p, c), 0, n - 1, "WITHSCORES"))
                 for c in categories for shard in range(self.keys.shards) for p in (period, period - 1)]
        replies = await pipeline(self.wire, [r[2] for r in reads], timeout_s or self.settings.timeout_s)
        merged: dict[str | None, dict[str, float]] = {c: defaultdict(float) for c in categories}
        for (c, p, _), rows in zip(reads, replies, strict=True):
            if isinstance(rows, ReplyError):
                raise StoreUnavailable(f"Redis refused ZREVRANGE: {rows}")
            factor, scores = self.clock.read_factor(p, now_ms), merged[c]
            for item, score in zip(rows[::2], rows[1::2], strict=True):
                scores[item.decode()] += float(score) * factor
        return {c: sorted(scores.items(), key=lambda kv: -kv[1])[:n] for c, scores in merged.items()}
