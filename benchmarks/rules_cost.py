"""The hot path's added CPU for the live catalog and merchandising rules: one recommendation,
computed in process by the server's own functions (scope → combined effect → recommend()),
with no rules, and with 50 rules in scope.

    flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/rules_cost.py \\
        --store /tmp/merch-1m/store

The live catalog gives 20% of the items a brand, 10% a tag and 5% a new price; 2% are out of
stock. The 50 rules: 12 boosts and 12 buries (brand, tag, category, price range), 10 excludes,
8 pins, 4 price bounds, 2 includes (a brand; a tag, the include-only retrieval path), 2
out-of-stock; half need the shopper (a segment or a GrowthBook condition), a few are
scheduled. "All in scope" puts every one on the request's placement (the worst case); "mixed"
spreads them over the placements as a store would. CPU is time.process_time per call, medians
of interleaved rounds; this VM is shared and drifts, so compare within a run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from models import artifact  # noqa: E402
from models.catalog import ItemRecord  # noqa: E402
from server.catalog.view import ItemsView  # noqa: E402
from server.merchandising.applied import Applied  # noqa: E402
from server.merchandising.compiled import RuleIndex, RuleSet, Shopper  # noqa: E402
from server.merchandising.rules import parse_rules  # noqa: E402
from server.recommend.caches import Caches  # noqa: E402
from server.recommend.ladder import recommend  # noqa: E402
from server.recommend.model import ServingModel  # noqa: E402
from server.recommend.retrieval import Query  # noqa: E402
from server.settings import RecommendSettings  # noqa: E402
from server.store.records import LiveSession  # noqa: E402

NOW = int(time.time() * 1000)
PLACES = ("home", "product", "category", "cart", "search")


def live_catalog(model: ServingModel, rng: np.random.Generator) -> dict[str, ItemRecord]:
    ids = model.art.items.ids
    records: dict[str, dict] = {}
    for i in np.flatnonzero(rng.random(model.n_items) < 0.2).tolist():
        records.setdefault(ids[i], {})["brand"] = f"brand{i % 200}"
    for i in np.flatnonzero(rng.random(model.n_items) < 0.1).tolist():
        records.setdefault(ids[i], {})["tags"] = [f"tag{i % 50}"]
    for i in np.flatnonzero(rng.random(model.n_items) < 0.05).tolist():
        records.setdefault(ids[i], {})["price"] = float(rng.uniform(1, 200))
    for i in np.flatnonzero(rng.random(model.n_items) < 0.02).tolist():
        records.setdefault(ids[i], {})["in_stock"] = False
    return {k: ItemRecord(**v) for k, v in records.items()}


def fifty_rules(model: ServingModel, all_in: str | None, includes: bool = True) -> list[dict]:
    cats = model.categories
    rules: list[dict] = []

    def add(rule: dict, n: int) -> None:
        rule["id"] = f"r{len(rules)}"
        rule["placements"] = [all_in] if all_in else [PLACES[n % len(PLACES)]]
        if n % 2:  # half need the shopper
            if n % 4 == 1:
                rule["segments"] = ["vip", "loyal", "new", "promising", "dormant"]
            else:
                rule["condition"] = {"channel": {"$in": ["web", "app"]}}
        if n % 10 == 3:
            rule["start"], rule["end"] = NOW - 3_600_000, NOW + 3_600_000
        rules.append(rule)

    matches = [{"brand": ["brand1", "brand2"]}, {"tag": ["tag3"]}, {"category": [cats[5 % len(cats)]]},
               {"price": {"min": 50, "max": 80}}]
    for n in range(12):
        add({"kind": "boost", "match": matches[n % 4], "factor": 1.5 + n / 10}, n)
    for n in range(12):
        add({"kind": "bury", "match": matches[(n + 1) % 4], "factor": 0.5}, n)
    for n in range(10):
        add({"kind": "exclude", "match": {"brand": [f"brand{100 + n}"]}}, n)
    for n in range(8):
        item = model.art.items.ids[int(model.popular[1000 + n])]
        add({"kind": "pin", "item_id": item, "position": 1 + n}, n)
    for n in range(4):
        add({"kind": "price_bounds", "max": 150 + n}, n)
    if includes:
        add({"kind": "include", "match": {"brand": [f"brand{b}" for b in range(0, 200, 2)]}}, 0)
        add({"kind": "include", "match": {"tag": [f"tag{t}" for t in range(25)]}}, 2)
    else:  # the same count, acting in the finishing stage only
        add({"kind": "exclude", "match": {"tag": ["tag49"]}}, 0)
        add({"kind": "boost", "match": {"tag": ["tag48"]}, "factor": 2}, 2)
    for n in range(2):
        add({"kind": "out_of_stock", "hide": True}, n)
    assert len(rules) == 50
    return rules


def requests(model: ServingModel, rng: np.random.Generator) -> dict[str, list]:
    ids, users = model.art.items.ids, model.art.user_ids
    head = model.popular[:20_000]

    def session(n: int) -> LiveSession:
        items = [(ids[int(i)], "view", NOW - 1000 * j) for j, i in enumerate(rng.choice(head, n))]
        return LiveSession(items=items, category_affinity={model.categories[0]: 2.0})
    out: dict[str, list] = {"home, known user": [], "home, anonymous session": [], "product page": [],
                            "category page": []}
    for n in range(200):
        user = users[int(rng.integers(len(users)))]
        out["home, known user"].append((Query("home", user, f"s{n}", 10, NOW), session(3)))
        out["home, anonymous session"].append((Query("home", None, f"a{n}", 10, NOW + n), session(5)))
        out["product page"].append((Query("product", None, f"p{n}", 10, NOW,
                                          context_items=[ids[int(rng.choice(head))]]), None))
        out["category page"].append((Query("category", None, f"c{n}", 10, NOW,
                                           category=model.categories[n % len(model.categories)]), session(2)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rules_cost.md")
    args = ap.parse_args()
    threadpool_limits(1)
    rng = np.random.default_rng(5)
    model = ServingModel.from_artifact(artifact.load_current(args.store))
    caches = Caches(model)
    cfg = RecommendSettings()
    t = time.perf_counter()
    records = live_catalog(model, rng)
    view = ItemsView(model, records)
    view_s = time.perf_counter() - t
    reqs = requests(model, rng)
    shopper = Shopper("vip", lambda: {"channel": "web"})
    setups = {"no live catalog, no rules": (caches.base_view(model), None)}
    setups["live catalog, no rules"] = (view, None)
    indexes = {}
    for scope in ("mixed", "all in scope", "all in scope, no include"):
        t = time.perf_counter()
        rs = RuleSet(parse_rules(fifty_rules(model, None if scope == "mixed" else "home",
                                             includes=not scope.endswith("no include"))))
        indexes[scope] = (rs, RuleIndex(rs, view), time.perf_counter() - t)
        setups[f"live catalog, 50 rules ({scope})"] = (view, scope)
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name, (v, scope) in setups.items():
            for kind, calls in reqs.items():
                if scope is not None and scope.startswith("all") and not kind.startswith("home"):
                    continue
                start = time.process_time()
                for q, live in calls:
                    rules = None
                    if scope is not None:
                        rs, index, _ = indexes[scope]
                        chosen = rs.in_scope(q.placement, NOW, shopper)
                        rules = Applied(index, index.effect(chosen)) if chosen else Applied()
                    recommend(model, caches, q, live, None, cfg, view=v, rules=rules)
                times.setdefault((name, kind), []).append((time.process_time() - start) / len(calls))
    kinds = list(reqs)
    lines = [f"# Catalog and rules: CPU per recommendation ({model.n_items:,} items)", "",
             "Command: `flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python "
             f"benchmarks/rules_cost.py --store STORE` ({os.cpu_count()} cores shared with other work, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). The ladder and finishing stage only "
             "(no HTTP, no Redis read); median of "
             f"{args.rounds} interleaved rounds of 200 requests per kind. Live catalog: {len(records):,} "
             "records "
             f"(view built in {view_s:.1f} s); rule bits built in "
             + ", ".join(f"{s}: {indexes[s][2] * 1000:.0f} ms" for s in indexes) + ".", "",
             "| setup | " + " | ".join(f"{k} µs" for k in kinds) + " |",
             "| --- |" + " ---: |" * len(kinds)]
    base = {k: statistics.median(times[("no live catalog, no rules", k)]) for k in kinds}
    for name in setups:
        cells = []
        for k in kinds:
            if (name, k) not in times:
                cells.append("-")
                continue
            us = statistics.median(times[(name, k)]) * 1e6
            cells.append(f"{us:,.0f} ({us - base[k] * 1e6:+,.0f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "In parentheses: the difference with the first row, in the same run."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
