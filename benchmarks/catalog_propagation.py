"""How fast a live catalog change reaches a worker, and what following the catalog costs.

    flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python \\
        benchmarks/catalog_propagation.py --store /tmp/merch-1m/store

1. Delay from a write's acknowledgement to a follower's mirror holding it (one item's stock,
   written at random 20-300 ms intervals): the server's choice (a blocked XREAD on a connection
   of its own rings when the change log grows; then one XRANGE and an HMGET of what changed)
   against polling the log (the XRANGE every `refresh_s`, 0.05 and 0.2 s).
2. What each costs a worker while nothing changes: its process CPU over 10 s, minus an idle
   event loop's.
3. Applying changes: a batch of 1,000 changed items to the mirror, the served model's view and
   the bits of 50 rules; the mirror's start-up load of 100,000 records; memory per record.
Embedded Redis over its Unix socket, one process; this VM is shared: compare within a run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import msgspec  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.rules_cost import fifty_rules, live_catalog  # noqa: E402
from models import artifact  # noqa: E402
from models.catalog import ItemRecord  # noqa: E402
from server.catalog.live import LiveCatalog  # noqa: E402
from server.catalog.store import CatalogStore, Doorbell  # noqa: E402
from server.merchandising.compiled import RuleIndex, RuleSet  # noqa: E402
from server.merchandising.rules import parse_rules  # noqa: E402
from server.recommend.model import ServingModel  # noqa: E402
from server.settings import RedisSettings  # noqa: E402
from server.store.connections import Connections  # noqa: E402
from server.store.embedded import EmbeddedRedis  # noqa: E402


async def delays(store: CatalogStore, follower, writes: int, rng: random.Random) -> list[float]:
    out = []
    for n in range(writes):
        await asyncio.sleep(rng.uniform(0.02, 0.3))
        await store.update([("probe", {"stock": n}, [])])
        acked = time.perf_counter()
        while True:
            record = follower.records.get("probe")
            if record is not None and record.stock == n:
                break
            await asyncio.sleep(0.0005)
        out.append(time.perf_counter() - acked)
    return out


async def idle_cpu(seconds: float) -> float:
    start = time.process_time()
    await asyncio.sleep(seconds)
    return (time.process_time() - start) / seconds


async def run(url: str, model: ServingModel, args) -> list[str]:
    settings = msgspec.convert({}, RedisSettings)
    conn = Connections.for_settings(url, settings)
    store = CatalogStore(conn.wire, settings)
    rng = random.Random(3)
    lines = ["## Propagation: write acknowledged → in the follower's mirror", "",
             "| follower | writes | p50 ms | p99 ms | max ms | CPU while idle (share of a core) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    baseline = await idle_cpu(args.idle_seconds)
    for refresh in (0.05, 0.2, None):
        doorbell = Doorbell(url, store.keys) if refresh is None else None
        follower = LiveCatalog(store, refresh or 0.2, doorbell)
        await follower.load()
        name = "blocked XREAD doorbell (Vitrine)" if refresh is None else f"poll every {refresh:g} s"
        task = asyncio.create_task(follower.run())
        await asyncio.sleep(0.2)
        d = np.array(await delays(store, follower, args.writes, rng)) * 1000
        cpu = await idle_cpu(args.idle_seconds) - baseline
        task.cancel()
        if doorbell is not None:
            await doorbell.aclose()
        lines.append(f"| {name} | {d.size} | {np.median(d):.1f} | {np.percentile(d, 99):.1f} | {d.max():.1f} "
                     f"| {max(cpu, 0):.2%} |")
        print(lines[-1], flush=True)

    # Applying changes, at the served model's scale.
    rng_np = np.random.default_rng(1)
    records = live_catalog(model, rng_np)
    catalog = LiveCatalog(store, 1.0)
    catalog.records = dict(records)
    t = time.perf_counter()
    view = catalog.prepare(model)
    view_s = time.perf_counter() - t
    rs = RuleSet(parse_rules(fifty_rules(model, None)))
    t = time.perf_counter()
    index = RuleIndex(rs, view)
    index_s = time.perf_counter() - t
    ids = model.art.items.ids
    costs = []
    for _ in range(5):
        batch = {ids[int(i)]: msgspec.structs.replace(records.get(ids[int(i)]) or ItemRecord(),
                                                      in_stock=bool(i % 2), price=float(i % 97))
                 for i in rng_np.choice(model.n_items, 1_000, replace=False)}
        t = time.perf_counter()
        catalog.apply(batch)
        index.sync()
        costs.append(time.perf_counter() - t)
    # Start-up load: 100k records written, then read back by a fresh mirror.
    for start in range(0, 100_000, 1_000):
        await store.update([(f"load{n}", {"price": 1.0 * n, "brand": f"b{n % 300}", "tags": ["a", "b"],
                                          "title": f"Item {n}", "image_url": f"https://x.example/{n}.jpg"},
                             []) for n in range(start, start + 1_000)])
    fresh = LiveCatalog(store, 1.0)
    t = time.perf_counter()
    await fresh.load()
    load_s = time.perf_counter() - t
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    again = LiveCatalog(store, 1.0)
    await again.load()
    per_record = (tracemalloc.get_traced_memory()[0] - before) / len(again.records)
    tracemalloc.stop()
    await conn.aclose()
    lines += ["", "## Applying changes", "",
              "| what | result |", "| --- | ---: |",
              f"| view of the model with {len(records):,} live records, built (model load thread) | "
              f"{view_s:.2f} s |",
              f"| bits of 50 rules over {model.n_items:,} items, built (off the event loop) | "
              f"{index_s:.2f} s |",
              f"| a batch of 1,000 changed items: mirror + view + 50 rules' bits (median of 5) | "
              f"{statistics.median(costs) * 1000:.1f} ms |",
              f"| start-up load of {len(fresh.records):,} records (title, image, brand, tags, price) | "
              f"{load_s:.2f} s ({load_s / len(fresh.records) * 1e6:.0f} µs per record) |",
              f"| memory per mirrored record (those records) | {per_record:,.0f} bytes |"]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--writes", type=int, default=100)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "catalog_propagation.md")
    args = ap.parse_args()
    model = ServingModel.from_artifact(artifact.load_current(args.store))
    with tempfile.TemporaryDirectory(prefix="vitrine-catalog-") as tmp:
        redis = EmbeddedRedis(Path(tmp)).start()
        try:
            import uvloop

            uvloop.install()
            lines = asyncio.run(run(redis.url, model, args))
        finally:
            redis.stop()
    head = [f"# Live catalog: propagation and cost ({model.n_items:,}-item model)", "",
            "Command: `flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python "
            "benchmarks/catalog_propagation.py --store STORE` "
            f"({os.cpu_count()} cores shared with other work, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).", ""]
    args.out.write_text("\n".join(head + lines) + "\n")
    print("\n".join(head + lines))


if __name__ == "__main__":
    main()
