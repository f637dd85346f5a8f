"""Connecting to Redis: a URL when configured, else the embedded server under the data dir."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from server.embedded_redis import EmbeddedRedis


def connect(url: str, *, timeout_s: float, max_connections: int = 256) -> aioredis.Redis:
    """A client for `redis://`, `rediss://` or `unix://` URLs that fails fast.

    No retries (the caller degrades or answers 503 at once, and the storefront retries the
    batch, deduplicated by event_id); connect and every socket read bounded by `timeout_s`
    (SessionStore also bounds each whole call by its own `timeout_s`). Replies are parsed by
    hiredis when installed (it is a dependency). Creating the client does no I/O: a Redis that
    is down at start-up shows as StoreUnavailable on the first call, not as a failed start.
    When all `max_connections` are busy a call fails at once (ConnectionError) instead of
    queueing behind a slow Redis."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        max_connections=max_connections,
    )


@contextmanager
def redis_server(url: str | None, data_dir: Path) -> Iterator[str]:
    """Yield the URL of the Redis to use: `url`, or without it the embedded Redis of
    `data_dir` (`<data_dir>/redis/redis.sock`). If one already answers there (a running
    server, when this is `vitrine events export`), attach to it; otherwise start it, and stop
    it on exit. Two redis-servers must never share one append-only file."""
    if url:
        yield url
        return
    server = EmbeddedRedis(Path(data_dir) / "redis")
    if _answers_ping(server.socket_path):
        yield server.url
        return
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@asynccontextmanager
async def open_redis(url: str | None, data_dir: Path, *, timeout_s: float) -> AsyncIterator[aioredis.Redis]:
    """A redis-py client for `url` or the embedded Redis (see `redis_server`)."""
    with redis_server(url, data_dir) as resolved:
        client = connect(resolved, timeout_s=timeout_s)
        try:
            yield client
        finally:
            await client.aclose()


def _answers_ping(socket_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
