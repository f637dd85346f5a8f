"""Parity: recommendations served over HTTP reach the trainer's offline Recall@20.

For each seed, held-out users of ml-latest-small (rating ≥ 4) are removed from training; the
trainer's offline evaluation folds in 80% of each one's positives and ranks the rest. Then the
same model is served (in-process aiohttp server, real embedded Redis), the same 80% are POSTed
as the user's session events, and `GET /v1/recommendations?session_id=…&k=20` is scored against
the same 20% targets.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/parity_movielens.py

The model is ALS with the configured parameters (`--search off`): the fold-in parity. The
searched model (ALS + EASE + popularity prior) is checked the same way by
`benchmarks/relevance_http.py`.

Run twice by default: with the blend's neutral settings (no live-affinity re-rank, no
diversity cap: the pure fold-in the offline evaluation measures) and with the defaults.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from models.foldin import fold_in  # noqa: E402
from server.app import create_app  # noqa: E402
from server.settings import Settings  # noqa: E402
from server.store.embedded import EmbeddedRedis  # noqa: E402
from training.catalog import read_catalog  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.interactions import confidence_matrix  # noqa: E402
from training.mapping import load_mapping  # noqa: E402
from training.pipeline import train  # noqa: E402
from training.readers import read_events  # noqa: E402

ML = ROOT.parent / "shared" / "datasets" / "ml-latest-small"
HELD, SEEDS, K = 60, 5, 20


def split(log, config, seed):
    """Held-out users and, for each, (fold-in items, weights, targets) in item-code space."""
    matrix = confidence_matrix(log, config.event_weights)
    rng = np.random.default_rng(seed)
    eligible = np.flatnonzero(np.diff(matrix.indptr) >= config.eval_min_positives)
    held = rng.choice(eligible, size=HELD, replace=False)
    cases = []
    for u in held:
        row = slice(matrix.indptr[u], matrix.indptr[u + 1])
        items, weights = matrix.indices[row], matrix.data[row]
        order = rng.permutation(items.size)
        n_in = int(round(config.eval_fold_in * items.size))
        cases.append((u, items[order[:n_in]], weights[order[:n_in]], items[order[n_in:]]))
    return held, cases


def offline_recall(model, log, cases, config) -> float:
    ids = np.array(log.item_ids)
    seen = model.popularity > 0
    recalls = []
    cap = model.session_items  # the server folds in the most recent events: the last posted
    for _, fin, w, tgt in cases:
        rows = np.array([model.item_index[i] for i in ids[fin][-cap:]])
        x = fold_in(model.item_factors, model.gram, rows, w[-cap:], regularization=config.regularization,
                    alpha=config.alpha)
        scores = np.asarray(model.item_factors) @ x
        scores[[model.item_index[i] for i in ids[fin]]] = -np.inf  # every posted item is excluded
        scores[~seen] = -np.inf
        top = set(np.argsort(-scores)[:K].tolist())
        targets = {model.item_index[i] for i in ids[tgt] if i in model.item_index}
        recalls.append(len(top & targets) / min(K, len(tgt)))
    return float(np.mean(recalls))


async def http_recall(store, log, cases, tmp, **blend) -> float:
    redis = EmbeddedRedis(tmp / f"redis-{time.monotonic_ns()}").start()
    settings = Settings().replace(**{
        "model.store": store, "redis.url": redis.url, "data.dir": tmp, "recommend.deadline_ms": 1000,
        # Some raters have 300+ positives: every one stays in the shopper's recent and purchased
        # items (excluded from the answer, as offline), beyond the caps a storefront needs.
        "redis.recent_cap": 5000, "redis.purchases_cap": 5000, "server.max_batch_events": 5000, **blend})
    ids = np.array(log.item_ids)
    categories = np.array([c or "" for c in log.item_category])
    recalls = []
    async with TestClient(TestServer(create_app(settings))) as client:
        now = int(time.time() * 1000)
        for n, (u, fin, _, tgt) in enumerate(cases):
            session = f"parity-{n}-{u}"
            events = [{"event_id": f"{session}-{i}", "session_id": session, "type": "purchase",
                       "item_id": item, "ts": now, **({"category": cat} if cat else {})}
                      for i, (item, cat) in enumerate(zip(ids[fin], categories[fin], strict=True))]
            resp = await client.post("/v1/events", json={"events": events})
            assert resp.status == 200, await resp.text()
            body = await (await client.get("/v1/recommendations",
                                           params={"session_id": session, "k": K})).json()
            got = {x["item_id"] for x in body["items"]}
            recalls.append(len(got & set(ids[tgt])) / min(K, len(tgt)))
    redis.stop()
    return float(np.mean(recalls))


async def main() -> None:
    log, _ = read_events(ML / "ratings.csv", mapping=load_mapping("movielens"),
                         catalog=read_catalog(ML / "movies.csv"))
    rows = []
    for seed in range(SEEDS):
        tmp = Path(tempfile.mkdtemp(prefix="vitrine-parity-"))
        # The fold-in alone (`--search off`), which `offline_recall` reproduces; the searched
        # model's parity (blend, neighbours, prior) is benchmarks/relevance_http.py's.
        config = TrainConfig(store=tmp / "models", evaluate=False, search="off")
        held, cases = split(log, config, seed)
        result = train(log.select(~np.isin(log.user, held)), config)
        from models import artifact

        model = artifact.load(result.path)
        offline = offline_recall(model, log, cases, config)
        neutral = await http_recall(config.store, log, cases, tmp, **{"recommend.affinity_weight": 0.0,
                                                                      "recommend.max_category_share": 1.0})
        default = await http_recall(config.store, log, cases, tmp)
        rows.append((seed, offline, neutral, default))
        print(f"seed {seed}: offline {offline:.4f}  http(neutral) {neutral:.4f}  http(default) {default:.4f}",
              flush=True)
    a = np.array([r[1:] for r in rows])
    lines = [
        "# Parity: HTTP recommendations vs the trainer's offline evaluation (ml-latest-small)",
        "",
        "Command: `OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/parity_movielens.py`  ",
        f"{HELD} held-out users per seed (rating ≥ 4 positives), 80% posted as session events "
        "(with the movie's first genre as category), "
        f"Recall@{K} on the other 20%; date {time.strftime('%Y-%m-%d')}. The model is ALS with the "
        "configured parameters (`--search off`), whose manifest says to fold in the 50 most recent "
        "events (`serving.session_items`, the cap before #21): the server folds in the last 50 "
        "posted, the offline fold-in the same 50; every posted item is excluded from both.",
        "",
        "| seed | offline | HTTP, neutral blend | HTTP, default blend |",
        "| --- | ---: | ---: | ---: |",
        *[f"| {s} | {o:.4f} | {n:.4f} | {d:.4f} |" for s, o, n, d in rows],
        f"| **mean** | **{a[:, 0].mean():.4f}** | **{a[:, 1].mean():.4f}** | **{a[:, 2].mean():.4f}** |",
        "",
        f"|HTTP (neutral) − offline| = {abs(a[:, 1].mean() - a[:, 0].mean()):.4f} and "
        f"|HTTP (default) − offline| = {abs(a[:, 2].mean() - a[:, 0].mean()):.4f} (target ≤ 0.01). "
        "The neutral blend turns off the live category-affinity re-rank and the per-category "
        "diversity cap, which the offline fold-in evaluation does not have; the default blend's "
        "difference is what those product choices cost or gain on this dataset (an affinity "
        "weight of 0.5 cost 0.012 here, hence the default of 0.25).",
    ]
    out = ROOT / "benchmarks" / "results" / "parity_movielens.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
