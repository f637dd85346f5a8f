"""The Redis connections of a process, opened once and shared by every store.

`wire` carries the per-request calls (ingest, a shopper's read, pings): the lean pipelining
client of `server/store/wire.py`, or its cluster router. `client`, redis-py, carries everything
off the hot path (export, admin, background refreshes that need no microseconds). Both are
plain URLs to the caller: a Redis, Valkey, a TLS endpoint, a Unix socket or a Redis Cluster
(`cluster=True`); creating them does no I/O, so a Redis that is down at start shows as
StoreUnavailable on the first call, not as a failed start.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from server.settings import RedisSettings
from server.store.cluster import ClusterWire
from server.store.wire import WireClient, WireError


class Connections:
    def __init__(self, url: str, *, cluster: bool = False, timeout_s: float = 1.0):
        self.url, self.cluster, self.timeout_s = url, cluster, timeout_s
        # A connection with a reply overdue by twice the timeout (at least 1 s) is presumed dead.
        options = {"connect_timeout_s": timeout_s, "stall_s": max(2 * timeout_s, 1.0)}
        self.wire: WireClient | ClusterWire = (ClusterWire(url, **options) if cluster
                                               else WireClient(url, **options))
        self.client = _redis_py(url, cluster=cluster, timeout_s=timeout_s)

    @classmethod
    def for_settings(cls, url: str, settings: RedisSettings) -> Connections:
        return cls(url, cluster=settings.cluster, timeout_s=settings.timeout_s)

    async def ping(self) -> bool:
        try:
            reply = await self.wire.call("PING", timeout_s=self.timeout_s, probe=True)
        except (WireError, TimeoutError):
            return False
        return reply == b"PONG"

    async def aclose(self) -> None:
        await self.wire.aclose()
        await self.client.aclose()


def _redis_py(url: str, *, cluster: bool, timeout_s: float) -> aioredis.Redis | RedisCluster:
    """redis-py that fails fast: no retries (the caller degrades or answers 503 at once, and the
    storefront retries the batch, deduplicated by event_id); connect and every socket read
    bounded by `timeout_s`."""
    if cluster:
        return RedisCluster.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    return aioredis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s,
                                   retry=Retry(NoBackoff(), 0), max_connections=256)
