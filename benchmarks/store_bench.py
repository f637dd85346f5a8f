"""SessionStore round-trip latency on the embedded Redis over its Unix socket.

One call at a time (no concurrency: this is the latency a request pays, not throughput), on
uvloop as the server runs. The shopper read has a full session (recent list at its cap,
purchases, a dozen affinity categories); ingests are new events for a rotating set of shoppers.

    .venv/bin/python benchmarks/store_bench.py --calls 5000 > benchmarks/results/store_latency.md
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import uvloop

from models.events import Event
from server.embedded_redis import EmbeddedRedis
from server.redis_client import connect
from server.session_store import SessionStore, StoreConfig

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


async def run(calls: int, data_dir: Path) -> list[str]:
    server = EmbeddedRedis(data_dir).start()
    store = SessionStore(connect(server.url, timeout_s=1.0), StoreConfig())
    try:
        # A full session for the read: 200 events, so `recent` is at its cap of 50.
        await store.ingest([_event(n, 0, T0 + n) for n in range(200)], now_ms=T0 + 200)
        await _timed(200, lambda i: store.read(user_id="u0", session_id="s0", now_ms=T0 + 1_000))  # warm-up
        counter = iter(range(1_000, 10**9))

        async def ingest(batch: int) -> None:
            events = [_event(next(counter), n % 1000, T0 + 2_000) for n in range(batch)]
            await store.ingest(events, now_ms=T0 + 2_000)

        rows = [
            _summary("baseline: PING, same client", await _timed(calls, lambda i: store.redis.ping())),
            _summary("read (full session)", await _timed(
                calls, lambda i: store.read(user_id="u0", session_id="s0", now_ms=T0 + 1_000))),
            _summary("read (unknown shopper)", await _timed(
                calls, lambda i: store.read(user_id=None, session_id=f"new{i}", now_ms=T0))),
            _summary("ingest, 1 event", await _timed(calls, lambda i: ingest(1))),
            _summary("ingest, 10 events (10 shoppers)", await _timed(calls, lambda i: ingest(10))),
            _summary("trending top 20", await _timed(
                calls, lambda i: store.trending(category=None, n=20, now_ms=T0 + 3_000))),
        ]
    finally:
        await store.redis.aclose()
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = uvloop.run(run(args.calls, Path(tmp)))
    print("| call | calls | median ms | p99 ms | calls/s (sequential) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
