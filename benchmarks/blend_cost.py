"""The hot path's added CPU for a searched model's session ranking: one recommendation computed
in process by the server's own functions (`recommend()`), with the published blend (fold-in +
EASE neighbours + popularity prior, `models/ranking.py`) and with the same factors served by
the fold-in alone (what a model without `serving.blend` gets).

    vitrine train --store /tmp/blend-store --no-eval        # the default synthetic store
    flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/blend_cost.py \\
        --store /tmp/blend-store

The requests are `benchmarks/rules_cost.py`'s (a known user's home page, an anonymous session
of 5 views, a product page, a category page with a 2-view session), plus anonymous sessions of
50 and 200 views. CPU is time.process_time per call, medians of interleaved rounds; this VM is
shared and drifts, so compare within a run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from rules_cost import NOW, requests  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from models import artifact  # noqa: E402
from models.ranking import SessionBlend  # noqa: E402
from server.recommend.caches import Caches  # noqa: E402
from server.recommend.ladder import recommend  # noqa: E402
from server.recommend.model import ServingModel  # noqa: E402
from server.recommend.retrieval import Query  # noqa: E402
from server.settings import RecommendSettings  # noqa: E402
from server.store.records import LiveSession  # noqa: E402


def long_sessions(model: ServingModel, rng: np.random.Generator, n: int) -> list:
    ids, head = model.art.items.ids, model.popular[:20_000]
    out = []
    for r in range(200):
        items = [(ids[int(i)], "view", NOW - 1000 * j) for j, i in enumerate(rng.choice(head, n))]
        out.append((Query("home", None, f"l{n}-{r}", 10, NOW + r), LiveSession(items=items)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "blend_cost.md")
    args = ap.parse_args()
    threadpool_limits(1)
    rng = np.random.default_rng(5)
    published = ServingModel.from_artifact(artifact.load_current(args.store))
    if not published.blended:
        raise SystemExit(f"{args.store}: the current model has no blend (trained with --search off?)")
    foldin = replace(published, blend=SessionBlend(), neighbours=None)
    models = {"fold-in alone (same factors)": foldin, "published blend": published}
    reqs = requests(published, rng)
    reqs["anonymous session, 50 views"] = long_sessions(published, rng, 50)
    reqs["anonymous session, 200 views"] = long_sessions(published, rng, 200)
    cfg = RecommendSettings()
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name, model in models.items():
            for kind, calls in reqs.items():
                caches = Caches(model)  # no session reuse across rounds: every call folds in
                start = time.process_time()
                for q, live in calls:
                    recommend(model, caches, q, live, None, cfg, view=caches.base_view(model))
                times.setdefault((name, kind), []).append((time.process_time() - start) / len(calls))
    m = published.art.manifest
    lines = [f"# Session blend: CPU per recommendation ({published.n_items:,} items)", "",
             "Command: `flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python "
             f"benchmarks/blend_cost.py --store STORE` ({os.cpu_count()} cores shared with other work, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}); STORE from `vitrine train --no-eval`. "
             "The ladder and finishing stage only (no HTTP, no Redis read); median of "
             f"{args.rounds} interleaved rounds of 200 requests per kind.", "",
             f"Model: {m['model']['family']}, {m['model']['als']['factors']} factors, "
             f"{m['model'].get('itemitem', {}).get('neighbours', 0)} neighbours per item; blend "
             f"{m['serving']['blend']}; session_items {m['serving']['session_items']}.", "",
             "| request | " + " | ".join(f"{n} µs" for n in models) + " | added µs |",
             "| --- |" + " ---: |" * (len(models) + 1)]
    for kind in reqs:
        us = [statistics.median(times[(n, kind)]) * 1e6 for n in models]
        lines.append(f"| {kind} | " + " | ".join(f"{u:,.0f}" for u in us) + f" | {us[1] - us[0]:+,.0f} |")
    lines += ["", "A known user's home page keeps the fold-in path (the trained vector); the "
              "product page ranks its context item's neighbours; a category page blends within "
              "the category."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
