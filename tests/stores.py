"""The stores over one Redis (any flavour), as the app builds them, for store-level tests."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from server.settings import RedisSettings
from server.store.connections import Connections
from server.store.sessions import SessionStore
from server.store.trending import TrendingStore


@dataclass
class Stores:
    conn: Connections
    settings: RedisSettings
    sessions: SessionStore
    trending: TrendingStore

    @classmethod
    def open(cls, url: str, *, cluster: bool = False, **settings) -> Stores:
        s = msgspec.convert({"cluster": cluster, **settings}, RedisSettings)
        conn = Connections.for_settings(url, s)
        return cls(conn, s, SessionStore(conn.wire, s), TrendingStore(conn.wire, s))

    @property
    def client(self):
        return self.conn.client

    @property
    def keys(self):
        return self.sessions.keys

    async def all_keys(self) -> list[bytes]:
        if self.settings.cluster:
            from redis.asyncio.cluster import RedisCluster

            return await self.client.keys("*", target_nodes=RedisCluster.PRIMARIES)
        return await self.client.keys("*")

    async def aclose(self) -> None:
        await self.conn.aclose()
