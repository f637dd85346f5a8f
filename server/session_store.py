"""Live shopper state in Redis: ingest events, read a shopper's session, read trending.

Ingest is one pipelined round trip: a Lua script per shopper (their slot) applies the events
to the live state once per event_id, and one script on the global slot appends the new events
to the durable stream and bumps the trending counters, also once per event_id. The caller
acknowledges only after that round trip returned, and Redis writes its append-only file before
replying, so an acknowledged event survives a Redis crash.

Trending uses forward decay: an event adds `w · 2^((now - period_start)/half_life)` to a sorted
set of the current period; reading scales scores back to "now". Periods last 16 half-lives so
increments stay below 2^16·w (no float overflow, no rescaling job); each read merges the
current and previous period.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from models.events import Event, EventType
from server.keys import Keys

_LUA = Path(__file__).with_name("lua")
_PERIOD_HALF_LIVES = 16
_RECENT_TYPES = frozenset({EventType.VIEW, EventType.ADD_TO_CART, EventType.PURCHASE})
_encode_event = msgspec.msgpack.Encoder().encode


class StoreUnavailable(Exception):
    """Redis is down, slow or refused the command: reads degrade, writes answer 503."""


@dataclass(slots=True)
class LiveSession:
    items: list[tuple[str, str, int]] = field(default_factory=list)  # newest first
    purchased: frozenset[str] = frozenset()
    returned: frozenset[str] = frozenset()
    category_affinity: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class IngestResult:
    accepted: int
    duplicates: list[str]


@dataclass(frozen=True)
class StoreConfig:
    prefix: str = "vt"
    session_ttl_s: int = 30 * 86_400
    recent_cap: int = 50
    affinity_half_life_s: float = 1_800.0
    trending_half_life_s: float = 6 * 3_600.0
    trending_cap: int = 10_000
    dedup_ttl_s: int = 86_400
    stream_maxlen: int = 0  # 0: unbounded; the export trims what it has written out
    # Every call is bounded by this (reads further by the request deadline). The client itself
    # has no socket timeout: redis-py would wrap each read in asyncio.wait_for, a task per read.
    timeout_s: float = 1.0
    # Affinity weight per event type: how strongly it says "interested in this category".
    affinity_weights: dict[str, float] = field(default_factory=lambda: {
        "view": 1.0, "add_to_cart": 3.0, "purchase": 6.0, "category_view": 1.0, "search": 0.5})
    trending_weights: dict[str, float] = field(default_factory=lambda: {
        "view": 1.0, "add_to_cart": 3.0, "purchase": 6.0})


class SessionStore:
    def __init__(self, client: aioredis.Redis, config: StoreConfig):
        self.redis = client
        self.config = config
        self.keys = Keys(config.prefix)
        self._shopper_script = client.register_script((_LUA / "shopper.lua").read_text())
        self._global_script = client.register_script((_LUA / "global.lua").read_text())
        self._read_script = client.register_script((_LUA / "read.lua").read_text())
        self._period_ms = int(_PERIOD_HALF_LIVES * config.trending_half_life_s * 1000)

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self.config.timeout_s):
                return bool(await self.redis.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    # -- writes -------------------------------------------------------------------------
    async def ingest(self, events: list[Event], *, now_ms: int) -> IngestResult:
        """Store valid events; returns how many were new. Raises StoreUnavailable."""
        if not events:
            return IngestResult(0, [])
        cfg = self.config
        by_shopper: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            by_shopper[self.keys.shopper_tag(event.user_id, event.session_id)].append(event)
        period = now_ms // self._period_ms
        scale = 2.0 ** ((now_ms - period * self._period_ms) / (cfg.trending_half_life_s * 1000))
        trend_all = self.keys.trending(period)
        g_keys = [self.keys.stream, trend_all]
        g_args: list = [cfg.dedup_ttl_s, 2 * self._period_ms // 1000, scale, cfg.stream_maxlen,
                        cfg.trending_cap]
        for event in events:
            g_keys += [self.keys.dedup(event.event_id),
                       self.keys.trending(period, event.category) if event.category else trend_all]
            g_args += [_encode_event(event), event.item_id or "",
                       cfg.trending_weights.get(str(event.type), 0.0)]
        try:
            async with asyncio.timeout(cfg.timeout_s), self.redis.pipeline(transaction=False) as pipe:
                for tag, group in by_shopper.items():
                    await self._shopper_script(keys=self.keys.shopper(tag),
                                               args=self._shopper_args(group), client=pipe)
                await self._global_script(keys=g_keys, args=g_args, client=pipe)
                results = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc
        new = {int(i) - 1 for i in results[-1]}
        duplicates = [e.event_id for i, e in enumerate(events) if i not in new]
        return IngestResult(accepted=len(new), duplicates=duplicates)

    def _shopper_args(self, events: list[Event]) -> list:
        cfg = self.config
        args: list = [cfg.session_ttl_s, cfg.recent_cap, cfg.affinity_half_life_s * 1000]
        for e in events:
            entry = (msgpack.packb([e.item_id, str(e.type), e.ts])
                     if e.item_id and e.type in _RECENT_TYPES else b"")
            args += [e.event_id, e.item_id or "", str(e.type), e.ts, e.quantity, e.category or "",
                     cfg.affinity_weights.get(str(e.type), 0.0), entry]
        return args

    # -- reads --------------------------------------------------------------------------
    async def read(self, *, user_id: str | None, session_id: str | None, now_ms: int) -> LiveSession:
        """The shopper's live state in one pipelined round trip. Raises StoreUnavailable."""
        keys = self.keys.shopper(self.keys.shopper_tag(user_id, session_id))[:4]
        try:
            # One EVALSHA instead of a 4-command pipeline: a quarter of the client-side work.
            async with asyncio.timeout(self.config.timeout_s):
                raw_recent, flat_bought, raw_returned, flat_aff = await self._read_script(
                    keys=keys, args=[self.config.recent_cap])
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc
        raw_bought = dict(zip(flat_bought[::2], flat_bought[1::2], strict=True))
        raw_aff = dict(zip(flat_aff[::2], flat_aff[1::2], strict=True))
        items = [tuple(msgpack.unpackb(x)) for x in raw_recent]
        purchased = frozenset(k.decode() for k, v in raw_bought.items() if int(v) > 0)
        return LiveSession(
            items=items,  # type: ignore[arg-type]
            purchased=purchased,
            returned=frozenset(x.decode() for x in raw_returned),
            category_affinity=self._decay_affinity(raw_aff, now_ms),
        )

    def _decay_affinity(self, raw: dict[bytes, bytes], now_ms: int) -> dict[str, float]:
        half_life_ms = self.config.affinity_half_life_s * 1000
        out = {}
        for key, value in raw.items():
            if key.startswith(b"s:"):
                cat = key[2:]
                t = float(raw.get(b"t:" + cat, now_ms))
                out[cat.decode()] = float(value) * 2.0 ** (-max(now_ms - t, 0) / half_life_ms)
        return out

    async def trending(self, *, category: str | None, n: int, now_ms: int) -> list[tuple[str, float]]:
        """Top `n` items by decayed live activity, overall or in one category."""
        period = now_ms // self._period_ms
        half_life_ms = self.config.trending_half_life_s * 1000
        try:
            async with asyncio.timeout(self.config.timeout_s), self.redis.pipeline(transaction=False) as pipe:
                pipe.zrevrange(self.keys.trending(period, category), 0, n - 1, withscores=True)
                pipe.zrevrange(self.keys.trending(period - 1, category), 0, n - 1, withscores=True)
                current, previous = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc
        scores: dict[str, float] = defaultdict(float)
        for rows, start in ((current, period * self._period_ms),
                            (previous, (period - 1) * self._period_ms)):
            factor = math.pow(2.0, -(now_ms - start) / half_life_ms)
            for item, score in rows:
                scores[item.decode()] += score * factor
        return sorted(scores.items(), key=lambda kv: -kv[1])[:n]
