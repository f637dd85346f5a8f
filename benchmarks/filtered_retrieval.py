"""Filtered retrieval on a 1M-item model: include-only filters that keep 10%, 1% and 0.1% of the
items, recall@20 against exact filtered search and the cost of one query, strategy by strategy.

    flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python \\
        benchmarks/filtered_retrieval.py --store /tmp/merch-1m/store   # or no --store: trains one

Strategies (each asked for the 100 candidates the server ranks, then its top 20 compared):
- over-fetch from the served index (the trainer's norm head) and drop what the filter rejects;
- FAISS with an `IDSelectorBitmap` in its search parameters: an IVF (the trainer's kind, nlist
  4·√n, fp16 lists) at a few `nprobe`, and the exact flat index;
- Vitrine's allowed set (server/recommend/filtered.py): the filter's `scan` largest-norm items
  scored exactly from a contiguous block (exact when the filter keeps at most `scan`).
Two kinds of filter: random subsets (a tag on random items: nothing in common with the
factors, the hard case) and categories (whole categories, cut to size at random: what a
category page or a collection looks like). Queries are trained user vectors. Times are one
query at a time, one thread; this VM is shared and its speed drifts, so compare within a run.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from models import artifact  # noqa: E402
from server.recommend.filtered import WIDE, AllowedSet, allowed_candidates, filtered_candidates  # noqa: E402
from server.recommend.model import ServingModel  # noqa: E402
from server.settings import RecommendSettings  # noqa: E402
from training.index import ivf_nlist, new_ivf  # noqa: E402

K, CANDIDATES = 20, 100
SHARES = (0.10, 0.01, 0.001)  # the issue's; --shares 0.5,0.25 adds wide filters (without --faiss)
SCANS = (5_000, 10_000, 20_000, 50_000)


def filters(model: ServingModel, rng: np.random.Generator,
            shares: tuple[float, ...]) -> list[tuple[str, float, np.ndarray]]:
    n = model.n_items
    out = []
    for share in shares:
        out.append(("random", share, rng.random(n) < share))
        # Whole categories, largest first, until the share is reached; the last one cut at random.
        sizes = np.bincount(model.item_category[model.item_category >= 0], minlength=len(model.categories))
        mask = np.zeros(n, bool)
        for code in rng.permutation(len(sizes)):
            members = model.item_category == code
            need = int(share * n) - int(mask.sum())
            if need <= 0:
                break
            if members.sum() > need:
                members &= rng.random(n) < need / members.sum()
            mask |= members
        out.append(("categories", share, mask))
    return out


def timed(fn, queries) -> tuple[list, list[float]]:
    results, times = [], []
    for q in queries:
        start = time.perf_counter()
        results.append(fn(q))
        times.append(time.perf_counter() - start)
    return results, times


def recall(found: list[np.ndarray], exact: np.ndarray) -> float:
    hits = [len(set(f[:K].tolist()) & set(e.tolist())) / K for f, e in zip(found, exact, strict=True)]
    return float(np.mean(hits))


def top(items: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    return items[np.argsort(-scores, kind="stable")[:k]]


def bitmap(mask: np.ndarray) -> faiss.IDSelectorBitmap:
    bits = np.packbits(mask, bitorder="little")
    sel = faiss.IDSelectorBitmap(mask.size, faiss.swig_ptr(bits))
    sel.referenced = bits  # keep the bytes alive as long as the selector
    return sel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, help="model store (default: train a 1M-item synthetic one)")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--shares", default=",".join(map(str, SHARES)), help="filter shares, e.g. 0.5,0.25")
    ap.add_argument("--no-faiss", action="store_true", help="skip the FAISS selectors (and their IVF build)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "filtered_retrieval.md")
    args = ap.parse_args()
    threadpool_limits(1)
    faiss.omp_set_num_threads(1)
    store = args.store
    if store is None:
        store = Path(tempfile.mkdtemp(prefix="vitrine-filtered-"))
        subprocess.run([sys.executable, "-m", "vitrine.cli", "train", "--items", "1000000", "--users",
                        "500000", "--n-events", "10000000", "--no-eval", "--store", str(store)], check=True)
    model = ServingModel.from_artifact(artifact.load_current(store, mmap=False))
    x = np.ascontiguousarray(model.item_factors)
    rng = np.random.default_rng(7)
    users = np.asarray(model.user_factors)
    queries = users[rng.choice(users.shape[0], args.queries * 2, replace=False)]
    queries = queries[np.linalg.norm(queries, axis=1) > 1e-6][: args.queries].astype(np.float32)

    t = time.perf_counter()
    nlist = ivf_nlist(x.shape[0])
    if not args.no_faiss:
        ivf = new_ivf(x.shape[1], nlist)
        ivf.train(x[rng.choice(x.shape[0], min(x.shape[0], 64 * nlist), replace=False)])
        ivf.add(x)
        flat = faiss.IndexFlatIP(x.shape[1])
        flat.add(x)
    ivf_build = time.perf_counter() - t

    index = model.art.manifest["index"]
    shown_args = " ".join(a for a in sys.argv[1:] if a != str(args.store)).replace("--store", "--store STORE")
    lines = [f"# Filtered retrieval, {model.n_items:,} items (k = {x.shape[1]})", "",
             f"Command: `flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python "
             f"benchmarks/filtered_retrieval.py {shown_args}` "
             f"({platform.machine()}, {os.cpu_count()} cores shared with other work, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). {len(queries)} trained user vectors as "
             f"queries; recall@{K} of each strategy's top {K} (from its {CANDIDATES} candidates) against "
             f"exact search over the filter's items; µs per query, one thread (median / p99). Served index: "
             f"{artifact.describe_index(index)}"
             + ("." if args.no_faiss else
                f"; IVF for the selectors built here: nlist {nlist}, fp16 lists ({ivf_build:.0f} s)."), "",
             "| filter | keeps | strategy | recall@20 | µs median | µs p99 |",
             "| --- | ---: | --- | ---: | ---: | ---: |"]
    summary: dict[tuple[str, float], dict[str, tuple[float, float]]] = {}
    for kind, share, mask in filters(model, rng, tuple(float(s) for s in args.shares.split(","))):
        rows = np.flatnonzero(mask)
        exact = np.stack([top(rows, x[rows] @ query, K) for query in queries])
        shown = np.ones(model.n_items, bool)
        label = f"| {kind} | {rows.size:,} ({share:.1%}) |"
        results: list[tuple[str, float, list[float]]] = []

        def overfetch(n, mask=mask):
            def run(q):
                scores, items = model.search(q, n)
                ok = (items >= 0) & mask[np.maximum(items, 0)]
                return top(items[ok], scores[ok], K)
            return run
        for name, n in ((f"over-fetch {CANDIDATES} from the index", CANDIDATES),
                        (f"over-fetch {model.index_size:,} (all the index)", model.index_size)):
            found, times = timed(overfetch(n), queries)
            results.append((name, recall(found, exact), times))

        sel = bitmap(mask)
        for nprobe in () if args.no_faiss else (64, 384, 1024):
            params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)

            def ivf_run(q, params=params):
                scores, items = ivf.search(q[None, :], CANDIDATES, params=params)
                ok = items[0] >= 0
                return top(items[0][ok], scores[0][ok], K)
            found, times = timed(ivf_run, queries)
            results.append((f"FAISS IVF + IDSelectorBitmap, nprobe {nprobe}", recall(found, exact), times))
        flat_params = faiss.SearchParameters(sel=sel)

        def flat_run(q, flat_params=flat_params):
            scores, items = flat.search(q[None, :], CANDIDATES, params=flat_params)
            ok = items[0] >= 0
            return top(items[0][ok], scores[0][ok], K)
        if not args.no_faiss:
            found, times = timed(flat_run, queries[:50])  # exact and slow: fewer queries
            results.append(("FAISS flat + IDSelectorBitmap (exact)", recall(found, exact[:50]), times))

        for scan in SCANS:
            t = time.perf_counter()
            allowed = AllowedSet(model, mask, scan)
            build_ms = (time.perf_counter() - t) * 1000

            def vitrine(q, allowed=allowed, shown=shown):
                items, scores = filtered_candidates(allowed, q, CANDIDATES, shown)
                return top(items, scores, K)
            found, times = timed(vitrine, queries)
            what = "exact" if allowed.exact else f"{scan:,} largest-norm"
            results.append((f"allowed set, scan {scan:,} ({what}; built once in {build_ms:.0f} ms, "
                            f"{allowed.nbytes / 2**20:.1f} MB)", recall(found, exact), times))
        served = AllowedSet(model, mask, RecommendSettings().filter_scan_max)

        def as_served(q, allowed=served, shown=shown):
            items, scores = allowed_candidates(model, allowed, q, CANDIDATES, shown)
            return top(items, scores, K)
        found, times = timed(as_served, queries)
        how = "index, n / share" if served.share >= WIDE else f"scan {served.rows.size:,}"
        results.append((f"**as served** (filter_scan_max {RecommendSettings().filter_scan_max:,}: {how})",
                        recall(found, exact), times))
        for name, r, times in results:
            us = np.asarray(times) * 1e6
            lines.append(f"{label} {name} | {r:.3f} | {np.median(us):,.0f} | {np.percentile(us, 99):,.0f} |")
            summary.setdefault((kind, share), {})[name] = (r, float(np.median(us)))
        print("\n".join(lines[-len(results):]), flush=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
