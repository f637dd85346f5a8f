"""A lean Redis connection for the request hot path: one multiplexed, pipelining connection
whose replies hiredis parses.

Why not redis-py's asyncio client here: its connection pool, retry wrapper and per-command
bookkeeping cost ~70 µs of CPU per GET with 16 in flight, against ~11 µs on this bare asyncio
protocol (benchmarks/results/store_latency.md). At thousands of requests a second on one core
that difference is a sizeable share of the budget. redis-py stays the client for everything
off the hot path (exports, admin, tests); this module only sends commands and matches replies.

Every command of every request goes down one connection (Redis answers in order, so replies
are matched first-in first-out), which also pipelines concurrent requests for free. The commands
of all the callers of one event-loop pass leave in one write, at the end of that pass: the
requests that arrived together share one send() and, as Redis answers a batch it read at once
in one write, one wake-up and read for their replies (a send or a wake-up costs tens of µs of
CPU on these VMs: benchmarks/results/wake_cost.md). A lone caller waits for nothing: the write
leaves as soon as its task yields. A caller
bounds its wait with `timeout_s` (a timer handle); a reply that arrives after its caller gave
up is dropped. If the oldest unanswered command is older than `stall_s`, the connection is
presumed dead (a Redis stopped or partitioned without a reset), closed, and every waiter
fails; the next call reconnects. While Redis is down, calls fail at once for `retry_after_s`
instead of each waiting for its own connect.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from urllib.parse import urlparse

import hiredis
from redis.connection import SSLConnection
from redis.connection import parse_url as _redis_py_parse_url

_pack = hiredis.pack_command  # RESP encoding in C (bytes, str, int, float arguments)


class WireError(ConnectionError):
    """No connection to Redis, or it was lost with commands in flight."""


class ReplyError(Exception):
    """An error reply (`-ERR …`, `-NOSCRIPT …`): returned in place of that command's result."""


class _Batch:
    """The replies one caller waits for."""

    __slots__ = ("future", "replies", "left", "sent_at")

    def __init__(self, future: asyncio.Future, n: int):
        self.future, self.replies, self.left, self.sent_at = future, [], n, time.monotonic()


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=ReplyError)
        self.pending: deque[_Batch] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self.outbox: list[bytes] = []  # this loop pass's commands, written by flush()

    def send(self, chunk: bytes) -> None:
        if not self.outbox:
            asyncio.get_running_loop().call_soon(self.flush)
        self.outbox.append(chunk)

    def flush(self) -> None:
        out, self.outbox = self.outbox, []
        if self.lost is None and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        pending = self.pending
        while (reply := self.reader.gets()) is not False:
            batch = pending[0]
            batch.replies.append(reply)
            batch.left -= 1
            if batch.left == 0:
                pending.popleft()
                if not batch.future.done():  # done: its caller timed out and left
                    batch.future.set_result(batch.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(WireError(f"connection to Redis lost: {exc or 'closed by the server'}"))

    def fail(self, exc: Exception) -> None:
        self.lost = exc
        while self.pending:
            batch = self.pending.popleft()
            if not batch.future.done():
                batch.future.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


class WireClient:
    def __init__(self, url: str, *, connect_timeout_s: float = 1.0, stall_s: float = 2.0,
                 retry_after_s: float = 0.2):
        self.url = url
        self._target = parse_url(url)
        self.connect_timeout_s, self.stall_s, self.retry_after_s = connect_timeout_s, stall_s, retry_after_s
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Task | None = None
        self._down_until = 0.0
        self._last_error: Exception | None = None

    async def call(self, *args, timeout_s: float | None = None, probe: bool = False) -> object:
        """One command's reply (a ReplyError instance for an error reply)."""
        return (await self.pipeline([args], timeout_s=timeout_s, probe=probe))[0]

    async def pipeline(self, commands: list[tuple], *, timeout_s: float | None = None,
                       probe: bool = False) -> list:
        """The replies of `commands`, sent in one write (one round trip). Raises WireError, or
        TimeoutError after `timeout_s` (a timer handle: asyncio.timeout costs ~4× more here).
        `probe` (health checks) tries to connect even while Redis is believed down."""
        proto = self._proto
        if proto is None or proto.lost is not None or self._stalled(proto):
            if probe:
                self._down_until = 0.0
            proto = await self._connect()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        proto.pending.append(_Batch(future, len(commands)))
        proto.send(b"".join([_pack(c) for c in commands]))
        if timeout_s is None:
            return await future
        timer = loop.call_later(timeout_s, _expire, future)
        try:
            return await future
        finally:
            timer.cancel()

    def _stalled(self, proto: _Protocol) -> bool:
        if proto.pending and time.monotonic() - proto.pending[0].sent_at > self.stall_s:
            proto.fail(WireError(f"Redis did not answer for {self.stall_s:.1f} s"))
            return True
        return False

    async def _connect(self) -> _Protocol:
        if time.monotonic() < self._down_until:
            raise WireError(f"Redis unreachable: {self._last_error}")
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        task = self._connecting
        try:
            # shield: one caller timing out must not cancel the connect the others wait on
            return await asyncio.shield(task)
        finally:
            if task.done() and self._connecting is task:
                self._connecting = None

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        t = self._target
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                if t["path"]:
                    _, proto = await loop.create_unix_connection(_Protocol, t["path"])
                else:
                    _, proto = await loop.create_connection(_Protocol, t["host"], t["port"], ssl=t["ssl"])
                setup = []
                if t["password"] is not None:
                    setup.append(("AUTH", t["username"], t["password"]) if t["username"]
                                 else ("AUTH", t["password"]))
                if t["db"]:
                    setup.append(("SELECT", t["db"]))
                if setup:
                    self._proto = proto
                    future = loop.create_future()
                    proto.pending.append(_Batch(future, len(setup)))
                    proto.send(b"".join([_pack(c) for c in setup]))
                    for reply in await future:
                        if isinstance(reply, ReplyError):
                            proto.fail(WireError(f"Redis refused the connection setup: {reply}"))
                            raise WireError(str(reply))
        except (OSError, TimeoutError) as exc:
            self._proto, self._last_error = None, exc
            self._down_until = time.monotonic() + self.retry_after_s
            raise WireError(f"cannot connect to Redis at {redact(self.url)}: {exc or 'timeout'}") from exc
        self._proto = proto
        return proto

    async def aclose(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._proto is not None:
            self._proto.fail(WireError("client closed"))
            self._proto = None


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def parse_url(url: str) -> dict:
    """redis-py's reading of the URL (the same one the off-path client makes), reduced to
    what a connection needs."""
    u = _redis_py_parse_url(url)  # ValueError for a scheme other than redis://, rediss://, unix://
    tls = u.get("connection_class") is SSLConnection
    return {"path": u.get("path"), "host": u.get("host", "localhost"), "port": u.get("port", 6379),
            "ssl": ssl.create_default_context() if tls else None, "db": u.get("db", 0),
            "username": u.get("username"), "password": u.get("password")}


def redact(url: str) -> str:
    u = urlparse(url)
    return url.replace(f":{u.password}@", ":***@") if u.password else url
