"""Event ingestion per worker: 100-event batches as storefronts send them, one worker pinned to
core 0 (Redis and this load generator on core 1, as in loadtest/bench.py).

    flock /tmp/vitrine-bench.lock .venv/bin/python benchmarks/events_rate.py --store /tmp/m1m

1. a closed-loop probe (N batches in flight) for the maximum events/s;
2. open-loop runs at fixed shares of it: batches *scheduled* at fixed intervals, latency from
   the scheduled send (no coordinated omission), p99 per batch, the worker's CPU per event;
3. `/healthz` at the same request rate, alternated with each run, as the in-run floor.

Each batch holds views, category views, add-to-carts and purchases of 20 shoppers (half signed
in) on the model's popular items, fresh event ids (no duplicates), `ts` now.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shlex
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadtest.bench import closed_loop, open_loop, pinned_server  # noqa: E402
from loadtest.traffic import Catalog, Traffic  # noqa: E402
from loadtest.worker_cpu import cpu_seconds, with_server_cpu  # noqa: E402

TYPES = ("view",) * 6 + ("category_view",) * 2 + ("add_to_cart", "purchase")


class EventBatches:
    """The request stream: `POST /v1/events` with `size` events each."""

    def __init__(self, catalog: Catalog, size: int, seed: int):
        self.catalog, self.size, self.rng = catalog, size, random.Random(seed)
        self.shoppers = [(f"s-{seed}-{n}", catalog.users[n] if n % 2 else None) for n in range(2_000)]

    def next(self):
        events = []
        for session, user in self.rng.sample(self.shoppers, 20):
            for _ in range(self.size // 20):
                item = self.rng.choice(self.catalog.items)
                typ = self.rng.choice(TYPES)
                event = {"event_id": uuid.uuid4().hex, "session_id": session, "type": typ,
                         "ts": int(time.time() * 1000)}
                if typ == "category_view":
                    event["category"] = self.catalog.category_of.get(item) or self.catalog.categories[0]
                else:
                    event["item_id"] = item
                if user:
                    event["user_id"] = user
                events.append(event)
        return "POST", "/v1/events", {"events": events}, f"events{self.size}"


def redis_pid(work: Path) -> int:
    """The embedded Redis `pinned_server` started under `work`."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "redis-server" in cmdline and str(work) in cmdline:
                return int(proc.name)
    raise LookupError(f"no redis-server under {work}")


async def with_redis_cpu(run, pid: int) -> dict:
    """`run`'s result plus Redis's share of a core over it (Redis is single-threaded)."""
    before, start = cpu_seconds(pid), time.perf_counter()
    result = await run
    return {**result, "redis_busy": (cpu_seconds(pid) - before) / (time.perf_counter() - start)}


async def run(base: str, catalog: Catalog, args, pid: int, redis: int) -> dict:
    await closed_loop(base, EventBatches(catalog, args.size, 99), args.concurrency, 2)  # warm up
    batches = EventBatches(catalog, args.size, 1)
    probe = await with_redis_cpu(with_server_cpu(
        closed_loop(base, batches, args.concurrency, args.probe_seconds), pid), redis)
    runs = []
    for fraction in (float(f) for f in args.fractions.split(",")):
        rate = probe["rate"] * fraction
        runs.append({
            "fraction": fraction, "rate": rate,
            "events": await with_redis_cpu(with_server_cpu(
                open_loop(base, EventBatches(catalog, args.size, 2), rate, args.seconds, pid), pid), redis),
            "healthz": await with_server_cpu(open_loop(base, Traffic(None), rate, args.seconds), pid)})
    return {"probe": probe, "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--port", type=int, default=18082)
    ap.add_argument("--size", type=int, default=100, help="events per batch")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--probe-seconds", type=float, default=10)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--fractions", default="0.5,0.8")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "events_rate.md")
    args = ap.parse_args()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    catalog = Catalog.from_store(args.store)
    work = Path(tempfile.mkdtemp(prefix="vitrine-events-"))
    with pinned_server(args.store, args.port, work, env) as server:
        import uvloop

        uvloop.install()
        report = asyncio.run(run(f"http://127.0.0.1:{args.port}", catalog, args, server.pid, redis_pid(work)))
    p, size = report["probe"], args.size
    command = shlex.join(["flock", "/tmp/vitrine-bench.lock", ".venv/bin/python", "benchmarks/events_rate.py",
                          *sys.argv[1:]])
    lines = ["# Event ingestion per worker", "",
             f"Command: `{command}` "
             f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores shared "
             f"with other work). Model: {catalog.manifest['counts']['items']:,} items. {size}-event "
             "batches; one worker on core 0, Redis (embedded) and the load on core 1.", "",
             f"Closed loop, {args.concurrency} batches in flight, {args.probe_seconds:g} s: "
             f"**{p['rate'] * size:,.0f} events/s** ({p['rate']:,.0f} batches/s), p99 "
             f"{p['p99']:.1f} ms per batch, worker CPU {p['server_cpu_us'] / size:.1f} µs per event "
             f"({p['server_busy']:.0%} busy), Redis {p['redis_busy']:.0%} of a core; errors "
             f"{p['errors']}.", "",
             "| fixed rate | events/s | batch p50 ms | p95 | p99 | max | worker µs/event | busy | "
             "Redis busy | /healthz p99 ms at the same rate | errors |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in report["runs"]:
        e, h = r["events"], r["healthz"]
        lines.append(f"| {r['fraction']:.0%} of max | {r['rate'] * size:,.0f} | {e['p50']:.1f} | "
                     f"{e['p95']:.1f} | {e['p99']:.1f} | {e['max']:.1f} | {e['server_cpu_us'] / size:.1f} | "
                     f"{e['server_busy']:.0%} | {e['redis_busy']:.0%} | {h['p99']:.1f} | {e['errors']} |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
