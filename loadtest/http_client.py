"""A lean HTTP/1.1 load client: keep-alive connections over raw asyncio protocols.

Why not aiohttp's client: on this 2-core machine it spends ~500 µs of CPU per request, more than
the server under test, so at 1–2k req/s the load generator (which shares a core with Redis)
saturates first and its own queueing shows up as server latency. This client writes a prebuilt
request and reads the status line and `Content-Length` body: the whole load generator,
traffic model included, used 18% of a core at 1,600 req/s (~110 µs per request).

One request in flight per connection (like a browser or a proxy's upstream pool, no
pipelining). Only what the benchmark needs: responses must carry `Content-Length` (aiohttp
sets it on every body-bearing response Vitrine sends); anything else fails the request.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import orjson


class HttpError(Exception):
    """The connection failed or the response could not be read."""


def build_request(method: str, path: str, body: dict | None, host: str) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    if body is None:
        return (head + "\r\n").encode()
    payload = orjson.dumps(body)
    head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    return head.encode() + payload


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.buffer = bytearray()
        self.status = 0
        self.need = -1  # bytes of the whole response (head + body), once the head is parsed
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.need < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            try:
                self.status = int(head[0].split(" ", 2)[1])
                length = next(int(line.split(":", 1)[1]) for line in head[1:]
                              if line[:15].lower() == "content-length:")
            except (IndexError, ValueError, StopIteration):
                self._fail(HttpError(f"unreadable response head: {head[0]!r}"))
                return
            self.need = end + 4 + length
        if len(self.buffer) >= self.need and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.status)

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    async def send(self, raw: bytes, timeout_s: float) -> int:
        self.buffer.clear()
        self.need = -1
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        # A timer handle, not asyncio.wait_for: that wraps every request in a task.
        timer = loop.call_later(timeout_s, self._fail, TimeoutError(f"no response in {timeout_s} s"))
        self.transport.write(raw)
        try:
            return await waiter
        finally:
            timer.cancel()


class Client:
    """A pool of up to `limit` keep-alive connections to one `http://host:port` base URL."""

    def __init__(self, base: str, limit: int = 64, timeout_s: float = 5.0):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.host_header = parts.netloc
        self.limit, self.timeout_s = limit, timeout_s
        self.idle: list[_Connection] = []
        self.open = 0
        self.slots = asyncio.Semaphore(limit)

    def request_bytes(self, method: str, path: str, body: dict | None = None) -> bytes:
        return build_request(method, path, body, self.host_header)

    async def send(self, raw: bytes) -> int:
        """Send one prebuilt request; returns the status. Raises HttpError or TimeoutError."""
        async with self.slots:
            conn = self.idle.pop() if self.idle else None
            if conn is None or conn.closed:
                loop = asyncio.get_running_loop()
                try:
                    _, conn = await loop.create_connection(_Connection, self.host, self.port)
                except OSError as exc:
                    raise HttpError(f"connect: {exc}") from None
            try:
                status = await conn.send(raw, self.timeout_s)
            except BaseException:
                conn.transport.close()
                raise
            if not conn.closed:
                self.idle.append(conn)
            return status

    def close(self) -> None:
        for conn in self.idle:
            conn.transport.close()
        self.idle.clear()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()
