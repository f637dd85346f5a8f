"""Would batching across requests pay? The fold-in solve and the index search of B concurrent
anonymous sessions done at once (what #25 proposed: requests ready in the same event-loop pass
sharing one stacked solve and one search over a matrix of queries) against one at a time, on
the same model, per query; medians of interleaved rounds.

    flock /tmp/vitrine-bench.lock .venv/bin/python benchmarks/batching.py --store STORE

The batched versions live here, not in the server: measured, they save too little to be worth
a ladder suspended at each of its search and solve steps (results/batching.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from ratios import shoppers  # noqa: E402

from models.foldin import WOODBURY_MAX_ITEMS, FoldIn  # noqa: E402
from server.recommend.model import ServingModel  # noqa: E402


def solve_many(f: FoldIn, sessions: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """FoldIn.solve of several sessions in one stacked Woodbury solve, rows padded with zero
    vectors (a zero row adds nothing to z and its row of I + D·Y B⁻¹Yᵀ is the identity's)."""
    assert all(0 < len(i) <= WOODBURY_MAX_ITEMS for i, _ in sessions)
    b, n = len(sessions), max(len(i) for i, _ in sessions)
    rows, c, pad = np.zeros((b, n), np.int64), np.zeros((b, n)), np.ones((b, n), bool)
    for r, (idx, w) in enumerate(sessions):
        rows[r, :len(idx)], c[r, :len(idx)], pad[r, :len(idx)] = idx, w, False
    y = f.item_factors.take(rows.ravel(), axis=0).astype(np.float64).reshape(b, n, -1)
    y[pad] = 0.0
    c *= f.alpha
    p = y @ f.base_inv
    z = (c[:, None, :] @ p)[:, 0]
    d = c - 1.0
    m = d[:, :, None] * (p @ y.transpose(0, 2, 1))
    m[:, np.arange(n), np.arange(n)] += 1.0
    t = np.linalg.solve(m, (d * (y @ z[:, :, None])[:, :, 0])[:, :, None])
    return (z - (t.transpose(0, 2, 1) @ p)[:, 0]).astype(np.float32)


def search_many(model: ServingModel, queries: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """ServingModel.search of the rows of `queries` over the scanned items in one product."""
    scores = queries @ model.scan_vectors
    size = scores.shape[1]
    top = scores.argpartition(size - n, axis=1)[:, size - n:]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = (-top_scores).argsort(axis=1, kind="stable")
    top, top_scores = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_scores, order, axis=1)
    return [(top_scores[r], model.scan_items[top[r]]) for r in range(len(queries))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--queries", type=int, default=1600)
    ap.add_argument("--n", type=int, default=205,
                    help="candidates per query (the server's default + 5 excluded)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "batching.md")
    args = ap.parse_args()
    _, rows, art = shoppers(args.store, args.queries, 5)
    model = ServingModel.from_artifact(art)
    if model.scan_vectors is None:
        sys.exit("the store's index is not a scanned one (norm head or flat)")
    sessions = [(np.array(r, np.int64), np.linspace(1.0, 0.5, len(r))) for r in rows]
    vecs = [model.foldin.solve(*s) for s in sessions]
    queries = np.stack([v / np.linalg.norm(v) for v in vecs]).astype(np.float32)
    # Same answers first: the batched versions are the one-at-a-time ones, stacked (sessions of
    # 1-5 items for the solve, so the padding is exercised).
    mixed = [(i[: 1 + r % 5], w[: 1 + r % 5]) for r, (i, w) in enumerate(sessions[:16])]
    assert np.allclose(solve_many(model.foldin, mixed), np.stack([model.foldin.solve(*s) for s in mixed]),
                       atol=1e-5)
    one, many = [model.search(q, args.n) for q in queries[:16]], search_many(model, queries[:16], args.n)
    assert all((a[1] == b[1]).all() for a, b in zip(one, many, strict=True))

    def per_query(fn, step: int) -> float:
        start = time.process_time()
        for lo in range(0, args.queries, step):
            fn(lo)
        return (time.process_time() - start) / args.queries * 1e6

    cases = {
        "solve": (lambda lo: model.foldin.solve(*sessions[lo]),
                  lambda b: lambda lo: solve_many(model.foldin, sessions[lo:lo + b])),
        "search": (lambda lo: model.search(queries[lo], args.n),
                   lambda b: lambda lo: search_many(model, queries[lo:lo + b], args.n)),
    }
    sizes = (2, 4, 8, 16)
    samples: dict = {}
    for _ in range(args.rounds):
        for name, (one, many) in cases.items():
            for b in sizes:  # interleaved: each batched size right after its one-at-a-time run
                samples.setdefault((name, b, "one"), []).append(per_query(one, 1))
                samples.setdefault((name, b, "batched"), []).append(per_query(many(b), b))
    cmd = "flock /tmp/vitrine-bench.lock .venv/bin/python benchmarks/batching.py --store STORE"
    lines = ["# Batching the fold-in and the search across requests", "",
             f"Command: `{cmd}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, 2 cores, "
             f"OPENBLAS_NUM_THREADS=1). Model: {len(art.items.ids):,} items, index "
             f"{art.manifest.get('index', {}).get('kind', '?')} ({model.scan_vectors.shape[1]:,} items "
             f"scanned per query); {args.queries:,} anonymous sessions of 5 views, top {args.n}. CPU µs "
             f"per query, medians of {args.rounds} interleaved rounds.", "",
             "| step | queries at once | one at a time | batched | saved per query |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name in cases:
        for b in sizes:
            one, batched = (statistics.median(samples[(name, b, k)]) for k in ("one", "batched"))
            lines.append(f"| {name} | {b} | {one:.1f} | {batched:.1f} | {one - batched:+.1f} |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
