"""Relevance: the model the trainer chooses against today's defaults and EASE, in the same run.

For each dataset the trainer's model search runs as `vitrine train` runs it (never on the
evaluation's held-out users), then each strong-generalization seed fits on the other users:

- the published choice: `training.evaluate.strong_generalization` with the search's spec,
  ranked by the functions the server calls (models.foldin, models.itemitem, models.ranking);
- ALS with today's defaults (regularization 0.05, alpha 2), the fold-in alone (before #21);
- EASE with λ 200, dense (the textbook model, every weight kept: the stricter baseline),
  and the same EASE served from its 200 strongest neighbours per item;
- popularity; short sessions (the first n folded-in items, the same targets) and the n most
  recent items of each session with the fold-in's, the item-item sum's and the blend's cost.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/relevance.py [--datasets ml,synthetic]
        [--seeds 5] [--first-seed 0] [--out benchmarks/results/relevance.md]

Seeds 0-4 are the trainer's own evaluation split; `--first-seed 100` draws other held-out
users (the search then excludes those instead), a check that a result is not one split's luck.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from models.itemitem import session_items, session_scores  # noqa: E402
from models.ranking import SessionBlend, rank_session  # noqa: E402
from training.als import fit_als  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.ease import _b_rows, _inverse_lower, ease_input  # noqa: E402
from training.evaluate import (  # noqa: E402
    TOP,
    _without_excluded,
    held_out_users,
    popularity_metrics,
    ranking_metrics,
    score_cases,
    strong_generalization,
)
from training.interactions import confidence_matrix  # noqa: E402
from training.mapping import load_mapping  # noqa: E402
from training.readers import read_events  # noqa: E402
from training.recommender import saturation_of  # noqa: E402
from training.search import search_model  # noqa: E402
from training.sessions import last_event_ms, split_cases  # noqa: E402
from training.synthetic import generate_store  # noqa: E402

# /work/shared/datasets beside the checkout (or beside the worktrees' directory).
ML = next((p / "shared" / "datasets" / "ml-latest-small" for p in ROOT.parents
           if (p / "shared" / "datasets" / "ml-latest-small").is_dir()), ROOT.parent / "shared")
SHORT = (1, 2, 3, 5, 10)
RECENT = (5, 10, 20, 50, 100, 200, None)
METRICS = ("recall@20", "ndcg@100")


def load(name: str):
    if name == "ml":
        log, _ = read_events([ML / "ratings.csv"], mapping=load_mapping("movielens"))
        return log, TrainConfig(eval_holdout_users=60), "ml-latest-small (rating ≥ 4)"
    log = generate_store(n_items=5_000, n_users=2_000, n_events=200_000, seed=0).log
    return log, TrainConfig(), "synthetic store (`vitrine train`'s default: 5,000 items, 2,000 customers)"


def dense_ease_top(train, cases, lam: float, saturation: float) -> np.ndarray:
    """EASE with every weight kept: scores = Σ rows of B over each session's items."""
    lower, rows = _inverse_lower(ease_input(train, saturation), lam)
    b = np.zeros((train.shape[1], train.shape[1]), dtype=np.float32)
    b[np.ix_(rows, rows)] = _b_rows(lower, np.ascontiguousarray(np.diag(lower)), 0, rows.size)
    del lower
    scores = np.stack([b[i].sum(axis=0) for i in cases.items])
    ranked = np.argsort(-scores, axis=1, kind="stable")[:, :TOP + max(len(i) for i in cases.items)]
    return _without_excluded(ranked, cases.items, train.shape[1])


def costs(model, cases, blend: SessionBlend) -> dict[int, dict[str, float]]:
    """Median µs per session of n most recent items: fold-in, item-item sum, blend (one call)."""
    out = {}
    for n in (5, 10, 20, 50, 100, 200):
        sessions = [(i, w) for i, w in zip(cases.most_recent(n).items, cases.most_recent(n).weights,
                                           strict=True) if len(i) >= n][:30]
        if not sessions:
            continue
        times = {"fold-in": [], "item-item": [], "blend": []}
        for items, weights in sessions:
            for _ in range(5):
                t0 = time.perf_counter()
                q = model.foldin(items, weights)
                t1 = time.perf_counter()
                distinct, values = session_items(items, weights, model.saturation)
                ii = session_scores(model.neighbours, distinct, values) if model.neighbours else None
                t2 = time.perf_counter()
                cand = np.argpartition(-(model.item_factors @ q), 100)[:100]
                t3 = time.perf_counter()
                rank_session(blend, distinct.size, popularity=model.popularity, popular=model.popular,
                             depth=100, foldin_candidates=cand,
                             foldin_scores=lambda rows, q=q: model.item_factors[rows] @ q, itemitem=ii)
                t4 = time.perf_counter()
                times["fold-in"].append(t1 - t0)
                times["item-item"].append(t2 - t1)
                times["blend"].append(t4 - t3)
        out[n] = {k: float(np.median(v) * 1e6) for k, v in times.items()}
    return out


def search_outside(matrix, config: TrainConfig, seeds: range, log):
    """The trainer's search on users outside every seed's held-out users (as
    `training.evaluate.evaluation_users` gathers them for seeds 0..n-1, the trainer's; other
    seeds give another, independent set of users): (SearchResult, seconds)."""
    held_out = np.unique(np.concatenate([held_out_users(matrix, config, np.random.default_rng(seed))
                                         for seed in seeds]))
    t = time.perf_counter()
    found = search_model(matrix, config, exclude_users=held_out, log=log)
    return found, time.perf_counter() - t


def run(name: str, seeds: range) -> dict:
    log, config, title = load(name)
    matrix = confidence_matrix(log, config.event_weights)
    last = last_event_ms(log, matrix)
    found, search_s = search_outside(matrix, config, seeds, log)
    spec = found.spec
    chosen = spec.als_config(config)
    saturation = saturation_of(config.event_weights)
    rows: dict = {}

    def add(key, metrics):
        rows.setdefault(key, []).append(metrics)

    for seed in seeds:
        published = strong_generalization(matrix, chosen, fit_als, seed, spec)
        model = published["fit"]["model"]
        rng = np.random.default_rng(seed)
        held = held_out_users(matrix, config, rng)
        cases = split_cases(matrix, held, config.eval_fold_in, rng, last)
        assert score_cases(model, cases) == published["model"]  # the same users, split, model
        train = matrix[np.setdiff1d(np.arange(matrix.shape[0]), held)]
        defaults = strong_generalization(matrix, config, fit_als, seed)
        add("published", published["model"])
        add("defaults", defaults["model"])
        add("popularity", published["popularity"])
        add("ease200", ranking_metrics(dense_ease_top(train, cases, 200.0, saturation), cases.targets,
                                       matrix.shape[1]))
        sparse = replace(spec, ease_lambda=200.0,
                         blend=SessionBlend(foldin_weight=0.0))
        add("ease200_sparse", strong_generalization(matrix, chosen, fit_als, seed, sparse)["model"])
        no_prior = model.with_blend(replace(spec.blend, prior_c=0.0))
        add("published_no_prior", score_cases(no_prior, cases))
        def_model = defaults["fit"]["model"]
        for n in SHORT:
            short = cases.first(n)
            add(f"short{n}_published", score_cases(model, short))
            add(f"short{n}_no_prior", score_cases(no_prior, short))
            add(f"short{n}_defaults", score_cases(def_model, short))
            add(f"short{n}_popularity", popularity_metrics(model.popularity, short))
        for n in RECENT:
            recent = cases.most_recent(n) if n else cases
            add(f"recent{n}_published", score_cases(model, recent))
            add(f"recent{n}_defaults", score_cases(def_model, recent))
        if seed == seeds[0]:
            cost = costs(model, cases, spec.blend)
        print(f"{name} seed {seed}: published {published['model']['recall@20']:.4f}, defaults "
              f"{defaults['model']['recall@20']:.4f}, ease200 {rows['ease200'][-1]['recall@20']:.4f}",
              flush=True)
    means = {k: {m: float(np.mean([r[m] for r in v])) for m in METRICS} for k, v in rows.items()}
    return {"title": title, "spec": spec, "search": found.record, "search_s": search_s, "means": means,
            "rows": rows, "cost": cost, "n_users": matrix.shape[0], "seeds": seeds,
            "held": config.eval_holdout_users}


def _ease(model: dict) -> str:
    if "itemitem" not in model:
        return ""
    ii = model["itemitem"]
    return f"; EASE λ {ii['lambda']:g}, {ii['neighbours']} neighbours"


def paired(rows: dict, a: str, b: str, metric: str) -> str:
    d = np.array([x[metric] for x in rows[a]]) - np.array([x[metric] for x in rows[b]])
    se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
    return f"{d.mean():+.4f} ± {se:.4f} (per seed {', '.join(f'{x:+.3f}' for x in d)})"


def report(r: dict) -> list[str]:
    m, s, spec = r["means"], r["search"], r["spec"]
    model = spec.describe()
    lines = [f"## {r['title']}", "",
             f"{len(r['seeds'])} seeds ({r['seeds'][0]}-{r['seeds'][-1]}) × {r['held']} held-out users "
             "(strong generalization: 80% of each user's positives folded in, Recall@20 and NDCG@100 on "
             "the other 20%).", "",
             f"**Published choice: {model['family']}** — ALS {model['als']}" + _ease(model)
             + f"; blend {spec.blend.as_dict()}; session_items {s['session_items']['chosen']}.", "",
             f"Search ({s['mode']}, {s['validation']['folds']} folds, {s['validation']['users']} validation "
             f"users, none of the {s['validation']['excluded_held_out_users']} held-out ones): "
             f"{r['search_s']:.0f} s; validation objective by family {s['families']}, today's defaults "
             f"{s['defaults_score']}.", "",
             "| model | Recall@20 | NDCG@100 |", "| --- | ---: | ---: |"]
    names = {"published": "published choice", "defaults": "ALS, today's defaults (before)",
             "ease200": "EASE λ 200, dense", "ease200_sparse": "EASE λ 200, 200 neighbours (served form)",
             "published_no_prior": "published choice without the prior (c = 0)", "popularity": "popularity"}
    lines += [f"| {label} | {m[k]['recall@20']:.4f} | {m[k]['ndcg@100']:.4f} |" for k, label in names.items()]
    lines += ["", "Paired differences (mean over seeds, ± its standard error):", ""]
    for base in ("defaults", "ease200"):
        for metric in METRICS:
            diff = paired(r["rows"], "published", base, metric)
            lines.append(f"- published − {names[base]}, {metric}: {diff}")
    lines += ["", "Short sessions (each held-out user's first n folded-in items; the same targets), "
              "Recall@20:", "", "| n | published | without prior | before (defaults) | popularity |",
              "| ---: | ---: | ---: | ---: | ---: |"]
    for n in SHORT:
        cells = [m[f"short{n}_{k}"]["recall@20"] for k in ("published", "no_prior", "defaults", "popularity")]
        lines.append(f"| {n} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
    lines += ["", "Session length (the n most recent folded-in items; the same targets), Recall@20, and the "
              f"median cost of one session at seed {r['seeds'][0]} (µs, one core, this shared VM: indicative "
              "only):", "",
              "| n | published | before (defaults) | fold-in µs | item-item µs | blend µs |",
              "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n in RECENT:
        cost = r["cost"].get(n, {})
        micros = [f"{cost[k]:.0f}" if k in cost else "-" for k in ("fold-in", "item-item", "blend")]
        lines.append(f"| {n or 'all'} | {m[f'recent{n}_published']['recall@20']:.4f} | "
                     f"{m[f'recent{n}_defaults']['recall@20']:.4f} | " + " | ".join(micros) + " |")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="ml,synthetic")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0, help="other seeds: other held-out users")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "relevance.md")
    args = ap.parse_args()
    command = shlex.join(["OPENBLAS_NUM_THREADS=1", ".venv/bin/python", "benchmarks/relevance.py",
                          *sys.argv[1:]])
    lines = ["# Relevance: the trainer's chosen model vs today's defaults and EASE", "",
             f"Command: `{command}`; date {time.strftime('%Y-%m-%d')}.", ""]
    for name in args.datasets.split(","):
        lines += report(run(name, range(args.first_seed, args.first_seed + args.seeds)))
        args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
