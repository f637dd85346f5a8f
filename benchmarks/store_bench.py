"""SessionStore round-trip latency on the embedded Redis over its Unix socket.

One call at a time (no concurrency: this is the latency a request pays, not throughput), on
uvloop as the server runs. The shopper read has a full session (recent list at its cap,
purchases, a dozen affinity categories); ingests are new events for a rotating set of shoppers.

    .venv/bin/python benchmarks/store_bench.py --calls 5000 > benchmarks/results/store_latency.md
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import uvloop

from models.events import Event
from server.settings import RedisSettings
from server.store.connections import Connections
from server.store.embedded import EmbeddedRedis
from server.store.sessions import SessionStore
from server.store.trending import TrendingStore

T0 = 1_800_000_000_000


def _event(n: int, shopper: int, ts: int) -> Event:
    kinds = ("view", "view", "view", "add_to_cart", "purchase")
    return Event(event_id=f"e{n}", session_id=f"s{shopper}", user_id=f"u{shopper}", type=kinds[n % 5],
                 ts=ts, item_id=f"i{n % 5000}", category=f"c{n % 12}")


def _summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[int(len(ms) * 0.99) - 1]
    return (f"| {name} | {len(ms):,} | {statistics.median(ms):.3f} | {p99:.3f} | "
            f"{len(ms) / sum(samples):,.0f} |")


async def _timed(calls: int, make_call) -> list[float]:
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        await make_call(i)
        samples.append(time.perf_counter() - start)
    return samples


async def _cpu_per_call(calls: int, make_call, concurrency: int = 16) -> float:
    """This process's CPU µs per call with `concurrency` calls in flight (as under load):
    the event-loop time a client costs the server, whatever Redis' own speed."""
    counter = iter(range(calls))

    async def worker() -> None:
        for i in counter:
            await make_call(i)
    start = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - start) / calls * 1e6


async def run(calls: int, data_dir: Path) -> list[str]:
    server = EmbeddedRedis(data_dir).start()
    conn = Connections(server.url, timeout_s=1.0)
    store = SessionStore(conn.wire, RedisSettings())
    trending = TrendingStore(conn.wire, RedisSettings())
    try:
        # A full session for the read: 200 events, so `recent` is at its cap of 50.
        await store.ingest([_event(n, 0, T0 + n) for n in range(200)], now_ms=T0 + 200)
        await _timed(200, lambda i: store.read(user_id="u0", session_id="s0", now_ms=T0 + 1_000))  # warm-up
        counter = iter(range(1_000, 10**9))

        async def ingest(batch: int) -> None:
            events = [_event(next(counter), n % 1000, T0 + 2_000) for n in range(batch)]
            await store.ingest(events, now_ms=T0 + 2_000)

        await conn.client.set("k", "v")
        cpu = {name: await _cpu_per_call(calls, call) for name, call in (
            ("redis-py asyncio (hiredis)", lambda i: conn.client.get("k")),
            ("server.store.wire", lambda i: conn.wire.call("GET", "k")))}
        rows = [
            _summary("baseline: PING, same client", await _timed(calls, lambda i: conn.ping())),
            _summary("read (full session)", await _timed(
                calls, lambda i: store.read(user_id="u0", session_id="s0", now_ms=T0 + 1_000))),
            _summary("read (unknown shopper)", await _timed(
                calls, lambda i: store.read(user_id=None, session_id=f"new{i}", now_ms=T0))),
            _summary("ingest, 1 event", await _timed(calls, lambda i: ingest(1))),
            _summary("ingest, 10 events (10 shoppers)", await _timed(calls, lambda i: ingest(10))),
            _summary("trending top 20", await _timed(
                calls, lambda i: trending.top(category=None, n=20, now_ms=T0 + 3_000))),
        ]
    finally:
        await conn.aclose()
        server.stop()
    return rows, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows, cpu = uvloop.run(run(args.calls, Path(tmp)))
    print("| call | calls | median ms | p99 ms | calls/s (sequential) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    print()
    print("Client CPU per GET, 16 in flight (the hot path's cost on the server's event loop):")
    print()
    print("| client | CPU µs per GET |")
    print("| --- | ---: |")
    for name, us in cpu.items():
        print(f"| {name} | {us:.0f} |")


if __name__ == "__main__":
    main()
