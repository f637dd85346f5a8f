"""What deciding a page's slots adds to the server's CPU per request.

    .venv/bin/python benchmarks/variants_cost.py --store /path/to/models [--rounds 6 --seconds 3]

One `vitrine serve` worker pinned to core 0 (Redis and this client on core 1) serves an
experiments document with three slots (two experiments, one of them with a targeting
condition, and a personalization rule). In alternating rounds, returning and new shoppers ask
`/v1/page?placement=home` without slots and with the three slots; the worker's CPU per request
is read from /proc around each round. The difference per slot is the cost of a decision
through HTTP (sticky reads included: the page's one Redis read also fetches the assignments);
rounds alternate so the machine's drift hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadtest.bench import pinned_server  # noqa: E402
from loadtest.cost import replay  # noqa: E402
from loadtest.traffic import Catalog  # noqa: E402
from loadtest.worker_cpu import with_server_cpu  # noqa: E402

TOKEN = "bench-admin"
DOC = {
    "slots": [{"key": "hero", "default": {"banner": "default"}}, {"key": "promo"}, {"key": "footer"}],
    "experiments": [
        {"key": "hero-test", "slots": ["hero"], "status": "running",
         "variants": [{"key": "a", "weight": 0.5, "content": {"banner": "a"}},
                      {"key": "b", "weight": 0.5, "content": {"banner": "b"}}]},
        {"key": "promo-test", "slots": ["promo"], "status": "running", "coverage": 0.8,
         "condition": {"$or": [{"returning": True}, {"channel": {"$in": ["web", "app"]}}]},
         "variants": [{"key": "a", "weight": 0.34}, {"key": "b", "weight": 0.33},
                      {"key": "c", "weight": 0.33}]},
    ],
    "rules": [{"key": "browsers", "slot": "footer", "condition": {"top_category": {"$exists": True}},
               "content": {"footer": "more of what you browse"}}],
}


def requests(catalog: Catalog, slots: bool, sessions: list[str]) -> list:
    extra = "&slot=hero&slot=promo&slot=footer&channel=web" if slots else ""
    return [("GET", f"/v1/page?placement=home&k=10&session_id={s}{extra}", None, "page") for s in sessions]


async def run(base: str, catalog: Catalog, args, pid: int) -> list[str]:
    import aiohttp

    async with aiohttp.ClientSession(base) as http:
        resp = await http.put("/v1/admin/experiments", json=DOC, headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 200, await resp.text()
    await asyncio.sleep(1.0)
    returning = [uuid.uuid4().hex for _ in range(2_000)]
    await replay(base, requests(catalog, True, returning), args.concurrency, 2.0)  # assigned: sticky now
    rows, deltas = [], []
    for r in range(args.rounds):
        costs = {}
        for slots in ((False, True) if r % 2 == 0 else (True, False)):
            fresh = [uuid.uuid4().hex for _ in range(50_000)]
            for kind, sessions in (("returning", returning), ("new", fresh)):
                result = await with_server_cpu(
                    replay(base, requests(catalog, slots, sessions), args.concurrency, args.seconds), pid)
                costs[(slots, kind)] = result["server_cpu_us"]
        for kind in ("returning", "new"):
            per_slot = (costs[(True, kind)] - costs[(False, kind)]) / 3
            deltas.append((kind, per_slot))
            rows.append(f"| {r + 1} | {kind} | {costs[(False, kind)]:,.0f} | {costs[(True, kind)]:,.0f} | "
                        f"{per_slot:,.1f} |")
            print(rows[-1], flush=True)
    summary = []
    for kind in ("returning", "new"):
        values = [d for k, d in deltas if k == kind]
        summary.append(f"| {kind} | {statistics.median(values):,.1f} | "
                       f"{min(values):,.1f} – {max(values):,.1f} |")
    return rows, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--port", type=int, default=18083)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "variants_cost.md")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vitrine-variants-"))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "VITRINE_SERVER_ADMIN_TOKEN": TOKEN}
    with pinned_server(args.store, args.port, work, env) as server:
        import uvloop

        uvloop.install()
        base = f"http://127.0.0.1:{args.port}"
        rows, summary = asyncio.run(run(base, Catalog.from_store(args.store), args, server.pid))
    text = "\n".join([
        "# What a slot decision costs through HTTP",
        "",
        f"Command: `.venv/bin/python benchmarks/variants_cost.py --store {args.store} --rounds {args.rounds} "
        f"--seconds {args.seconds}`; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        "One worker on core 0; `/v1/page?placement=home` without and with three slots (two experiments, "
        "one with a targeting condition and 80% coverage, and a rule), alternating rounds.",
        "",
        "| round | shoppers | page, no slots: CPU µs/request | page + 3 slots | added per slot (µs) |",
        "| ---: | --- | ---: | ---: | ---: |",
        *rows,
        "",
        "| shoppers | added CPU per slot, median (µs) | range over rounds |",
        "| --- | ---: | --- |",
        *summary,
        "",
        "Returning shoppers have their assignments (read in the page's one Redis round trip); new "
        "ones are assigned, their exposures written and counted (a second round trip, once per unit).",
    ])
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
