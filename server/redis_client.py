"""Connecting to Redis: a URL when configured, else the embedded server under the data dir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from server.embedded_redis import EmbeddedRedis


def connect(url: str, *, timeout_s: float) -> aioredis.Redis:
    """A client that fails fast: no retries (the caller degrades or answers 503 at once).
    Calls are bounded by the caller (SessionStore wraps each in one asyncio.timeout); only the
    connect has a socket-level timeout. hiredis parses replies."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        max_connections=256,
    )


@asynccontextmanager
async def open_redis(url: str | None, data_dir: Path, *, timeout_s: float) -> AsyncIterator[
        tuple[aioredis.Redis, EmbeddedRedis | None]]:
    """Yield (client, embedded server or None). Without `url`, start the embedded Redis in
    `data_dir` and stop it on exit."""
    embedded = None
    if not url:
        embedded = EmbeddedRedis(Path(data_dir) / "redis").start()
        url = embedded.url
    client = connect(url, timeout_s=timeout_s)
    try:
        yield client, embedded
    finally:
        await client.aclose()
        if embedded is not None:
            embedded.stop()
