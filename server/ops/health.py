"""What an operator must hear about without reading every log line: conditions kept for
`/readyz`'s detail, exposed as metrics, and logged once per distinct message rather than per
request or per interval.

`StoreHealth` checks, in the background, what can lose acknowledged events: a Redis without
persistence (at start, then every few minutes) and an export that falls behind the stream's
cap (every `interval_s`), plus the embedded Redis' supervisor when there is one.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisError, ResponseError

from server.ops.metrics import Metrics
from server.settings import RedisSettings
from server.store.embedded import Supervisor
from server.store.keys import Keys

log = logging.getLogger("vitrine.health")
STREAM_WARN_FILL = 0.5  # a shard half full: the export is behind (at the cap events are dropped)
PERSISTENCE_EVERY_S = 600.0


class LogOnce:
    """Logs each distinct message once, and again only after `every_s` (a condition that
    persists is repeated now and then, not on every request)."""

    def __init__(self, logger: logging.Logger, every_s: float = 300.0, remember: int = 256):
        self.logger, self.every_s, self.remember = logger, every_s, remember
        self._last: dict[str, float] = {}

    def __call__(self, level: int, message: str) -> bool:
        now = time.monotonic()
        last = self._last.get(message)
        if last is not None and now - last < self.every_s:
            return False
        if len(self._last) >= self.remember:
            self._last.clear()
        self._last[message] = now
        self.logger.log(level, "%s", message)
        return True


def durability_problem(configs: dict[str, dict[str, str]]) -> str | None:
    """Why acknowledged events could be lost if Redis crashes, from each node's `appendonly` and
    `save` (CONFIG GET), or None. Redis appends to its AOF before replying, so with `appendonly
    yes` a killed Redis loses nothing acknowledged (an OS crash: up to `appendfsync`'s second)."""
    bad = {node: c for node, c in configs.items() if c.get("appendonly") != "yes"}
    if not bad:
        return None
    node, c = next(iter(bad.items()))
    where = f"{node}: " if len(configs) > 1 else ""
    if c.get("save"):
        kept = f"only RDB snapshots (save '{c['save']}'): events since the last snapshot"
    else:
        kept = "no persistence at all (appendonly no, save ''): every event"
    return (f"Redis {where}keeps {kept} would be lost if it crashed, though acknowledged; "
            "set `appendonly yes` (docs/redis.md)")


class StoreHealth:
    def __init__(self, client, settings: RedisSettings, metrics: Metrics, *,
                 supervisor: Supervisor | None = None, interval_s: float = 10.0):
        self.client, self.settings, self.metrics = client, settings, metrics
        self.supervisor, self.interval_s = supervisor, interval_s
        self.keys = Keys(settings.prefix, settings.stream_shards)
        self.warnings: dict[str, str] = {}  # topic -> what to do, for /readyz
        self._log = LogOnce(log)
        self._dropped_at_start: int | None = None
        self._persistence_checked = -1e9

    @property
    def redis_down(self) -> str | None:
        """Why the embedded Redis is not running (its supervisor restarts it), or None."""
        return self.supervisor.down if self.supervisor is not None else None

    def problems(self) -> list[str]:
        """Conditions an operator must act on while serving, for `/readyz`'s detail."""
        return list(self.warnings.values())

    def _set(self, topic: str, message: str | None, level: int = logging.WARNING) -> None:
        if message is None:
            if self.warnings.pop(topic, None) is not None:
                log.info("resolved: %s", topic)
            return
        self.warnings[topic] = message
        self._log(level, message)

    async def check_persistence(self) -> None:
        configs: dict[str, dict[str, str]] = {}
        try:
            for name in ("appendonly", "save"):
                reply = await self._config_get(name)
                # A cluster answers per primary: {node: {name: value}}; a Redis {name: value}.
                nested = reply and isinstance(next(iter(reply.values())), dict)
                per_node = reply if nested else {"redis": reply}
                for node, values in per_node.items():
                    configs.setdefault(node, {}).update({k: str(v) for k, v in values.items()})
        except ResponseError as exc:  # CONFIG disabled or renamed (managed Redis): can't tell
            self.metrics.redis_durability_risk.set(-1)
            self._set("persistence", f"Redis persistence unknown (CONFIG GET refused: {exc}); make "
                      "sure it runs with `appendonly yes` or acknowledged events may be lost",
                      logging.INFO)
            return
        problem = durability_problem(configs)
        self.metrics.redis_durability_risk.set(1 if problem else 0)
        self._set("persistence", problem, logging.ERROR)

    async def _config_get(self, name: str) -> dict:
        if self.settings.cluster:
            from redis.asyncio.cluster import RedisCluster

            return await self.client.config_get(name, target_nodes=RedisCluster.PRIMARIES)
        return await self.client.config_get(name)

    async def check_streams(self, now_ms: int | None = None) -> None:
        """Backlog of every stream shard against `stream_maxlen`, the age of the oldest
        unexported event, and what the cap dropped."""
        now_ms = now_ms or int(time.time() * 1000)
        shards = list(range(self.keys.shards))
        pipe = self.client.pipeline(transaction=False)
        for shard in shards:
            pipe.xlen(self.keys.stream(shard))
            pipe.get(self.keys.export_position(shard))
            pipe.get(self.keys.stream_dropped(shard))
        replies = await pipe.execute()
        lengths, positions = replies[0::3], replies[1::3]
        dropped = sum(int(d or 0) for d in replies[2::3])
        oldest = None
        for shard, length, position in zip(shards, lengths, positions, strict=True):
            if length:
                after = (position or b"0-0").decode()
                first = await self.client.xrange(self.keys.stream(shard), min=f"({after}", count=1)
                if first:
                    at = int(first[0][0].split(b"-")[0])
                    oldest = at if oldest is None else min(oldest, at)
        cap = self.settings.stream_maxlen
        fill = max(lengths, default=0) / cap if cap else 0.0
        m = self.metrics
        m.stream_unexported.set(sum(lengths))
        m.stream_fill.set(fill)
        m.stream_oldest_s.set(max(now_ms - oldest, 0) / 1000 if oldest is not None else 0)
        m.stream_dropped.set(dropped)
        shard = max(range(len(lengths)), key=lengths.__getitem__, default=0)
        self._set("export", None if fill < STREAM_WARN_FILL else (
            f"the export is behind: stream shard {shard} holds {lengths[shard]:,} unexported events, "
            f"{fill:.0%} of redis.stream_maxlen ({cap:,}); past it the oldest are dropped. Run "
            "`vitrine events export` (and more often)"))
        if self._dropped_at_start is None:
            self._dropped_at_start = dropped
        lost = dropped - self._dropped_at_start
        self._set("dropped", None if lost <= 0 else (
            f"{lost:,} acknowledged events were dropped by redis.stream_maxlen before being exported "
            f"since this server started ({dropped:,} in all): export more often or raise the cap"),
            logging.ERROR)

    async def check(self) -> None:
        try:
            if time.monotonic() - self._persistence_checked > PERSISTENCE_EVERY_S:
                await self.check_persistence()
                self._persistence_checked = time.monotonic()
            await self.check_streams()
        except (RedisError, OSError) as exc:  # Redis down: readiness already says so; retry
            self._log(logging.DEBUG, f"store health not checked: {exc}")
        except Exception as exc:  # a cluster client's own errors, a surprise: log, keep checking
            self._log(logging.WARNING, f"store health check failed: {exc!r}")

    async def run(self) -> None:
        """Check every `interval_s` (the app checks once at start itself)."""
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check()
