"""Latency with 50 active merchandising rules: one server worker under fixed-rate storefront
traffic (loadtest/bench.py's machinery), without rules and with 50, alternated in one run.

    flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python \\
        benchmarks/rules_latency.py --store /tmp/merch-1m/store --rates 1600

The live catalog is seeded first (brands, tags, prices, stock on the served model's items, as
benchmarks/rules_cost.py does); the 50 rules are rules_cost.py's mix spread over the placements
(boosts, buries, excludes, pins, price bounds, includes, out-of-stock; half scoped to a segment
or a condition). Phases alternate none / 50 / none / 50 so that the machine's drift shows; the
worker's CPU per request is reported for each. Loopback, worker pinned to core 0, Redis and the
load generator on core 1; this VM is shared with other work: compare within the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.rules_cost import fifty_rules, live_catalog  # noqa: E402
from loadtest.bench import Traffic, closed_loop, open_loop, pinned_server  # noqa: E402
from loadtest.http_client import Client  # noqa: E402
from loadtest.traffic import Catalog  # noqa: E402
from loadtest.worker_cpu import with_server_cpu  # noqa: E402
from models import artifact  # noqa: E402
from server.recommend.model import ServingModel  # noqa: E402


async def _put(base: str, path: str, body) -> int:
    async with Client(base, limit=1, timeout_s=60) as client:
        raw = client.request_bytes("PUT", path, body)
        return await client.send(raw)


def _get_json(base: str, path: str) -> dict:
    import json
    import urllib.request

    with urllib.request.urlopen(base + path, timeout=10) as resp:
        return json.loads(resp.read())


async def settled(base: str, rules_version: int | None = None, item: str | None = None) -> None:
    """Until the worker runs the rules of `rules_version` and its mirror holds `item` (rules are
    matched against 1M items off the event loop: seconds), then 2 s more for the dust."""
    for _ in range(600):
        ok = rules_version is None or _get_json(base, "/v1/admin/rules")["version"] >= rules_version
        ok = ok and (item is None or _get_json(base, f"/v1/items/{item}")["live"])
        if ok:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.0)


async def seed(base: str, model: ServingModel) -> int:
    records = live_catalog(model, np.random.default_rng(5))
    rows = [{"item_id": k, **{f: v for f, v in msgspec.to_builtins(r).items() if f != "hidden"}}
            for k, r in records.items()]
    for start in range(0, len(rows), 1_000):
        status = await _put(base, "/v1/items", {"items": rows[start:start + 1_000]})
        if status != 200:
            raise SystemExit(f"seeding the catalog failed: {status}")
    await settled(base, item=rows[-1]["item_id"])
    return len(rows)


async def run(base: str, catalog: Catalog, model: ServingModel, args, pid: int) -> list[str]:
    n = await seed(base, model)
    rules = fifty_rules(model, None)
    # Warm up: the model's files in the page cache (the worker maps 256 MB of factors: a cold
    # page is a disk read inside a request), then the caches the first requests fill.
    for path in Path(args.store).glob("*/*.npy"):
        with path.open("rb") as f:
            while f.read(1 << 24):
                pass
    await closed_loop(base, Traffic(catalog, seed=99), 16, args.warmup)
    rows = []
    for phase, with_rules in enumerate((False, True, False, True)):
        status = await _put(base, "/v1/admin/rules?replace=true", {"rules": rules if with_rules else []})
        if status != 200:
            raise SystemExit(f"setting the rules failed: {status}")
        await settled(base, rules_version=phase + 1)
        for rate in [float(r) for r in args.rates.split(",")]:
            traffic = Traffic(catalog, seed=phase)
            r = await with_server_cpu(open_loop(base, traffic, rate, args.seconds, pid), pid)
            rows.append(f"| {'50 rules' if with_rules else 'no rules'} (phase {phase + 1}) | {rate:,.0f} | "
                        f"{r['rate']:,.0f} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | "
                        f"{r['max']:.1f} | {r['server_cpu_us']:,.0f} | {r['server_busy']:.0%} | "
                        f"{r['errors'] or '-'} |")
            print(rows[-1], flush=True)
    head = [f"# Latency with 50 merchandising rules ({model.n_items:,} items)", "",
            f"Command: `flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python "
            f"benchmarks/rules_latency.py --store STORE --rates {args.rates} --seconds {args.seconds:g}` "
            f"({os.cpu_count()} cores shared with other work, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). Live catalog: {n:,} records. Storefront "
            "mix of loadtest/traffic.py (home, product, category, similar, trending, events); latency from "
            "the scheduled send time (open loop). The recommendation budget is `recommend.deadline_ms` = "
            "20 ms.", "",
            "| rules | target req/s | achieved | p50 ms | p95 ms | p99 ms | max ms | worker CPU µs/request "
            "| worker busy | errors |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    return head + rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--port", type=int, default=18090)
    ap.add_argument("--rates", default="1600")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=20, help="seconds of closed-loop traffic first")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rules_latency.md")
    args = ap.parse_args()
    model = ServingModel.from_artifact(artifact.load_current(args.store))
    work = Path(tempfile.mkdtemp(prefix="vitrine-rules-bench-"))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with pinned_server(args.store, args.port, work, env) as server:
        catalog = Catalog.from_store(args.store)
        import uvloop

        uvloop.install()
        lines = asyncio.run(run(f"http://127.0.0.1:{args.port}", catalog, model, args, server.pid))
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
