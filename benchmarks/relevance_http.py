"""Relevance through HTTP: the trainer's chosen model vs today's defaults and EASE, served.

The same protocol as `benchmarks/relevance.py` (its held-out users, its 80/20 split, its search
that never sees them), but each model is published by `training.pipeline.train` and served by
the real server (in-process aiohttp, embedded Redis, default settings but for the blend's
re-rank where said): each held-out user's folded-in items are POSTed as purchases, oldest first,
to an anonymous session, then `GET /v1/recommendations?session_id=…&k=100` is scored against
the user's targets (Recall@20, NDCG@100, as training/evaluate.py scores).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/relevance_http.py [--seeds 5]

- published: `train(..., chosen=search)` with the search run once on users outside every
  seed's held-out users (as `vitrine train` excludes its evaluation users);
- ALS with today's defaults (`--search off`): what the server served before #21;
- EASE λ 200 with every weight kept, scored offline on the whole session: the textbook model,
  a stricter baseline than anything a server keeps in memory;
- popularity (offline) on the same targets, for 1- and 2-event sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from relevance import ML, dense_ease_top, search_outside  # noqa: E402

from models import artifact  # noqa: E402
from server.app import create_app  # noqa: E402
from server.settings import Settings  # noqa: E402
from server.store.embedded import EmbeddedRedis  # noqa: E402
from training.catalog import read_catalog  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.evaluate import TOP, held_out_users, popularity_metrics, ranking_metrics  # noqa: E402
from training.interactions import confidence_matrix  # noqa: E402
from training.mapping import load_mapping  # noqa: E402
from training.pipeline import train  # noqa: E402
from training.readers import read_events  # noqa: E402
from training.recommender import saturation_of, session_model_of  # noqa: E402
from training.sessions import Cases, last_event_ms, split_cases  # noqa: E402

NEUTRAL = {"recommend.affinity_weight": 0.0, "recommend.max_category_share": 1.0}
SHORT = (1, 2)


async def served_top(store: Path, log, cases: Cases, tmp: Path, **overrides) -> np.ndarray:
    """Each case's session POSTed to the server publishing `store`; its top-100 as item codes."""
    redis = EmbeddedRedis(tmp / f"redis-{time.monotonic_ns()}").start()
    settings = Settings().replace(**{"model.store": store, "redis.url": redis.url, "data.dir": tmp,
                                     "recommend.deadline_ms": 1000, **overrides})
    ids = np.array(log.item_ids)
    code = {item: n for n, item in enumerate(log.item_ids)}
    categories = np.array([c or "" for c in log.item_category])
    top = np.full((len(cases.items), TOP), -1, dtype=np.int64)
    try:
        async with TestClient(TestServer(create_app(settings))) as client:
            now = int(time.time() * 1000)
            for n, items in enumerate(cases.items):
                order = cases.recency[n][::-1] if cases.recency is not None else np.arange(items.size)
                session = f"s{n}-{time.monotonic_ns()}"
                events = [{"event_id": f"{session}-{i}", "session_id": session, "type": "purchase",
                           "item_id": ids[item], "ts": now,
                           **({"category": categories[item]} if categories[item] else {})}
                          for i, item in enumerate(items[order])]
                for start in range(0, len(events), 500):
                    resp = await client.post("/v1/events", json={"events": events[start:start + 500]})
                    assert resp.status == 200, await resp.text()
                resp = await client.get("/v1/recommendations", params={"session_id": session, "k": TOP})
                assert resp.status == 200, await resp.text()
                got = [code[x["item_id"]] for x in (await resp.json())["items"]]
                top[n, :len(got)] = got
    finally:
        redis.stop()
    return top


def score(top: np.ndarray, cases: Cases, n_items: int) -> dict[str, float]:
    m = ranking_metrics(top, cases.targets, n_items)
    return {"recall@20": m["recall@20"], "ndcg@100": m["ndcg@100"]}


async def run(seeds: range) -> dict:
    log, _ = read_events([ML / "ratings.csv"], mapping=load_mapping("movielens"),
                         catalog=read_catalog(ML / "movies.csv"))
    config = TrainConfig(eval_holdout_users=60, evaluate=False)
    matrix = confidence_matrix(log, config.event_weights)
    last = last_event_ms(log, matrix)
    found, search_s = search_outside(matrix, config, seeds, log)
    print(f"search: {found.spec.describe()} in {search_s:.0f} s", flush=True)
    rows: dict[str, list[dict]] = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        held = held_out_users(matrix, config, rng)
        cases = split_cases(matrix, held, config.eval_fold_in, rng, last)
        tmp = Path(tempfile.mkdtemp(prefix="vitrine-relevance-http-"))
        rest = log.select(~np.isin(log.user, held))
        off = replace(config, search="off")
        published = train(rest, replace(off, store=tmp / "published"), chosen=found).path.parent
        defaults = train(rest, replace(off, store=tmp / "defaults")).path.parent
        n_items = matrix.shape[1]
        got = {
            "published": await served_top(published, log, cases, tmp),
            "published_neutral": await served_top(published, log, cases, tmp, **NEUTRAL),
            "defaults": await served_top(defaults, log, cases, tmp),
            "defaults_neutral": await served_top(defaults, log, cases, tmp, **NEUTRAL),
        }
        for key, top in got.items():
            rows.setdefault(key, []).append(score(top, cases, n_items))
        # Parity: the trainer's own ranking (training.recommender.SessionModel, from the published
        # artifact) of the sessions as the server folds them in, unfiltered and un-re-ranked.
        capped = cases.most_recent(artifact.load_current(published).session_items)
        offline = session_model_of(artifact.load_current(published))
        ranked = offline.rank(capped.items, capped.weights, capped.items, TOP)
        rows.setdefault("published_offline", []).append(score(ranked, capped, n_items))
        train_matrix = matrix[np.setdiff1d(np.arange(matrix.shape[0]), held)]
        saturation = saturation_of(config.event_weights)
        rows.setdefault("ease200", []).append(score(
            dense_ease_top(train_matrix, cases, 200.0, saturation), cases, n_items))
        # The same sessions as the server folds in: the most recent `redis.recent_cap` items.
        capped = cases.most_recent(Settings().redis.recent_cap)
        rows.setdefault("ease200_capped", []).append(score(
            dense_ease_top(train_matrix, capped, 200.0, saturation), capped, n_items))
        popularity = np.asarray(train_matrix.sum(axis=0)).ravel()
        for n in SHORT:
            short = cases.first(n)
            rows.setdefault(f"short{n}_published", []).append(
                score(await served_top(published, log, short, tmp), short, n_items))
            rows.setdefault(f"short{n}_published_neutral", []).append(
                score(await served_top(published, log, short, tmp, **NEUTRAL), short, n_items))
            rows.setdefault(f"short{n}_defaults", []).append(
                score(await served_top(defaults, log, short, tmp), short, n_items))
            pop = popularity_metrics(popularity, short)
            rows.setdefault(f"short{n}_popularity", []).append(
                {"recall@20": pop["recall@20"], "ndcg@100": pop["ndcg@100"]})
        print(f"seed {seed}: " + ", ".join(f"{k} {v[-1]['recall@20']:.4f}" for k, v in rows.items()),
              flush=True)
    return {"found": found, "search_s": search_s, "rows": rows, "seeds": seeds}


def paired(rows: dict, a: str, b: str, metric: str) -> str:
    d = np.array([x[metric] for x in rows[a]]) - np.array([x[metric] for x in rows[b]])
    se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
    return f"{d.mean():+.4f} ± {se:.4f} (per seed {', '.join(f'{x:+.3f}' for x in d)})"


def report(r: dict, command: str) -> list[str]:
    rows, spec = r["rows"], r["found"].spec
    mean = {k: {m: float(np.mean([x[m] for x in v])) for m in ("recall@20", "ndcg@100")}
            for k, v in rows.items()}
    names = {"published_offline": "published choice, offline (the trainer's ranking of the same sessions)",
             "published": "published choice, HTTP",
             "published_neutral": "published choice, HTTP, neutral re-rank",
             "defaults": "ALS, today's defaults, HTTP",
             "defaults_neutral": "ALS, today's defaults, HTTP, neutral re-rank",
             "ease200": "EASE λ 200, dense, offline, whole session",
             "ease200_capped": "EASE λ 200, dense, offline, the 200 most recent items (as served)"}
    seeds = r["seeds"]
    lines = [
        "# Relevance through HTTP (ml-latest-small, rating ≥ 4)", "",
        f"Command: `{command}`; date {time.strftime('%Y-%m-%d')}.", "",
        f"{len(seeds)} seeds ({seeds[0]}-{seeds[-1]}) × 60 held-out users, the split of "
        "`benchmarks/relevance.py`; each user's 80% POSTed as purchases (oldest first, with the "
        "movie's first genre as category) to an anonymous session of a server with default settings "
        "(`redis.recent_cap` 200, the model's `session_items`), then GET k=100. \"Neutral re-rank\" "
        "turns off the live category-affinity re-rank and the per-category diversity cap.", "",
        f"Published: **{spec.family}**, {spec.describe()}, blend {spec.blend.as_dict()}, "
        f"session_items {r['found'].session_items}; search {r['search_s']:.0f} s "
        f"(validation objective by family {r['found'].record['families']}).", "",
        "| model | Recall@20 | NDCG@100 |", "| --- | ---: | ---: |",
        *[f"| {label} | {mean[k]['recall@20']:.4f} | {mean[k]['ndcg@100']:.4f} |"
          for k, label in names.items()],
        "", "Paired differences (mean over seeds ± its standard error):", "",
        "- parity, HTTP neutral − offline, recall@20: "
        + paired(rows, "published_neutral", "published_offline", "recall@20")]
    for a, b in (("published", "defaults"), ("published_neutral", "defaults_neutral"),
                 ("published", "ease200"), ("published_neutral", "ease200"),
                 ("published", "ease200_capped"), ("published_neutral", "ease200_capped")):
        for metric in ("recall@20", "ndcg@100"):
            lines.append(f"- {names[a]} − {names[b]}, {metric}: {paired(rows, a, b, metric)}")
    lines += ["", "Short sessions (the first n folded-in items, the same targets), Recall@20:", "",
              "| n | published, HTTP | published, HTTP, neutral re-rank | defaults, HTTP | popularity |",
              "| ---: | ---: | ---: | ---: | ---: |"]
    for n in SHORT:
        cells = [mean[f"short{n}_{k}"]["recall@20"] for k in ("published", "published_neutral", "defaults",
                                                                "popularity")]
        lines.append(f"| {n} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
    lines.append("")
    for n in SHORT:
        for key, label in (("published", "published"), ("published_neutral", "published, neutral re-rank")):
            diff = paired(rows, f"short{n}_{key}", f"short{n}_popularity", "recall@20")
            lines.append(f"- {n}-event sessions, {label} − popularity, recall@20: {diff}")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "relevance_http.md")
    args = ap.parse_args()
    command = shlex.join(["OPENBLAS_NUM_THREADS=1", ".venv/bin/python", "benchmarks/relevance_http.py",
                          *sys.argv[1:]])
    lines = report(asyncio.run(run(range(args.seeds))), command)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
