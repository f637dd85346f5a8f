"""Server CPU time per request, by request kind: where one worker's capacity goes.

    .venv/bin/python -m loadtest.cost --store /path/to/models [--seconds 5]

Starts one `vitrine serve` worker pinned to core 0 (Redis on core 1 with this client), then
replays each kind of storefront request (the traffic model of loadtest/traffic.py) in a
closed loop and reads the worker's CPU time (user + system, from /proc) before and after.
CPU µs per request is the worker's cost of that kind; 1e6 / it is the kind's ceiling on one
core. Unlike wall-clock latency it does not depend on the client's own speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from loadtest.bench import _one, pinned_server
from loadtest.http_client import Client
from loadtest.traffic import Catalog, Traffic
from loadtest.worker_cpu import with_server_cpu


async def replay(base: str, requests: list, concurrency: int, seconds: float) -> dict:
    """`requests` round-robin in a closed loop of `concurrency`: how many, and their statuses."""
    results: list = []
    deadline = time.perf_counter() + seconds
    position = iter(range(10**9))
    async with Client(base, limit=concurrency) as client:
        async def worker():
            while time.perf_counter() < deadline:
                await _one(client, requests[next(position) % len(requests)], results, None)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    statuses: dict = {}
    for _, status, *_ in results:
        statuses[status] = statuses.get(status, 0) + 1
    return {"requests": len(results), "statuses": statuses}


async def run(base: str, catalog: Catalog, args, pid: int) -> list[str]:
    traffic = Traffic(catalog, seed=7)
    by_kind: dict[str, list] = {}
    for _ in range(60_000):
        req = traffic.next()
        by_kind.setdefault(req[3].split(":")[0] if req[3].startswith("events") else req[3], []).append(req)
    by_kind["healthz"] = [("GET", "/healthz", None, "healthz")]
    mixed = [traffic.next() for _ in range(60_000)]
    rows = ["| request kind | requests | server CPU µs/request | ceiling req/s (1 core) | statuses |",
            "| --- | ---: | ---: | ---: | --- |"]
    # Events first so that the shoppers the recommendations ask for have live sessions.
    for kind in ["events", *sorted(k for k in by_kind if k != "events"), "mix"]:
        reqs = mixed if kind == "mix" else by_kind[kind]
        await replay(base, reqs, args.concurrency, 1.0)  # warm up
        r = await with_server_cpu(replay(base, reqs, args.concurrency, args.seconds), pid)
        us = r["server_cpu_us"]
        rows.append(f"| {kind} | {r['requests']:,} | {us:,.0f} | {1e6 / us:,.0f} | {r['statuses']} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--port", type=int, default=18081)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vitrine-cost-"))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    with pinned_server(args.store, args.port, work, env) as server:
        import uvloop

        uvloop.install()
        asyncio.run(run(f"http://127.0.0.1:{args.port}", Catalog.from_store(args.store), args, server.pid))


if __name__ == "__main__":
    main()
