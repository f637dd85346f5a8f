"""FAISS retrieval index over item factors (inner product), with its recall measured.

Exact search up to `exact_index_max_items` (flat inner product: 100k items ≈ 0.9 ms a query);
above it an IVF index, because exact search at 1M items costs ~10 ms. The IVF lists hold the
vectors in float16: a query's scan is bound by memory traffic, and at 100k items half the bytes
made it ~30% faster (217 → 145 µs at nlist 632, nprobe 48) for the same recall@50 (0.953 vs
0.954 with float32 lists, both against exact search); the index is also half the size.
IVF's recall is measured against exact search on sample queries at build time, with the
smallest `nprobe` of a fixed ladder that reaches the target; the result is recorded in the
manifest, not assumed. (HNSW on raw inner products recalled poorly on clustered factors in
DESIGN.md's measurements.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

from training.topk import exact_top_k

NPROBE_STEPS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
RECALL_K = 50


@dataclass
class IndexInfo:
    kind: str  # "flat_ip" | "ivf_fp16_ip"
    nlist: int | None
    nprobe: int | None
    recall_at_50: float  # against exact search on `queries` sample queries
    queries: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def set_nprobe(index: faiss.Index, nprobe: int | None) -> None:
    if nprobe:
        faiss.extract_index_ivf(index).nprobe = nprobe


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of the exact top-k found in the approximate top-k."""
    hits = [len(set(a[a >= 0]) & set(e[e >= 0])) / max((e >= 0).sum(), 1)
            for a, e in zip(approx, exact, strict=True)]
    return float(np.mean(hits))


def ivf_nlist(n_items: int) -> int:
    """IVF lists for a catalog: 4·√n (3,841 at 922k items). 2·√n was measured on the benchmark's
    factors too: k-means + add take 7.7 s instead of 22.7 s, but recall 0.95 then needs nprobe
    256 of 1,920 lists, which scans 13% of the items per query instead of 10% (nprobe 384 of
    3,841), and queries are no faster: 2.41 vs 2.35 ms single-thread."""
    return int(4 * math.sqrt(n_items))


def new_ivf(d: int, nlist: int) -> faiss.IndexIVF:
    """The (untrained) approximate index: IVF over an exact inner-product quantizer, lists
    stored as float16 scalars (no residuals: inner products need none)."""
    return faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, nlist, faiss.ScalarQuantizer.QT_fp16,
                                         faiss.METRIC_INNER_PRODUCT, False)


def build_index(
    item_factors: np.ndarray,
    queries: np.ndarray,
    *,
    exact_max_items: int,
    target_recall: float,
    seed: int = 0,
) -> tuple[faiss.Index, IndexInfo]:
    """Build the index for `item_factors`; `queries` (e.g. user vectors) measure its recall."""
    x = np.ascontiguousarray(item_factors, dtype=np.float32)
    n, d = x.shape
    if n <= exact_max_items:
        flat = faiss.IndexFlatIP(d)
        flat.add(x)
        return flat, IndexInfo("flat_ip", None, None, 1.0, 0)

    nlist = ivf_nlist(n)
    ivf = new_ivf(d, nlist)
    rng = np.random.default_rng(seed)
    sample = x[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
    ivf.cp.seed = seed
    ivf.train(sample)
    ivf.add(x)

    q = np.ascontiguousarray(queries, dtype=np.float32)
    # Zero vectors (shoppers with no weighted events) tie every item at 0: their "exact top-50"
    # is arbitrary and would make any index look bad. Measure on real queries only.
    q = q[np.linalg.norm(q, axis=1) > 1e-6]
    if q.shape[0] == 0:
        q = x
    q = q[rng.choice(q.shape[0], size=min(q.shape[0], 500), replace=False)]
    k = min(RECALL_K, n)
    exact = exact_top_k(q, x, k)  # 1.1 s at 1M items where faiss.knn took ~6 s (training/topk.py)
    # Predict the recall of every nprobe at once, then measure only the predicted step (and the
    # next ones, should ties make the measurement fall short): searching the whole ladder cost
    # ~2.6 s at 1M items, most of it on steps that were bound to fall short.
    steps = sorted({min(p, nlist) for p in NPROBE_STEPS})
    predicted = predicted_recall(ivf, q, exact, steps)
    start = next((i for i, r in enumerate(predicted) if r >= target_recall), len(steps) - 1)
    recall = 0.0
    for nprobe in steps[start:]:
        ivf.nprobe = nprobe
        _, approx = ivf.search(q, k)
        recall = recall_at_k(approx, exact)
        if recall >= target_recall:
            break
    return ivf, IndexInfo("ivf_fp16_ip", nlist, int(ivf.nprobe), round(recall, 4), int(q.shape[0]))


def predicted_recall(ivf: faiss.IndexIVF, queries: np.ndarray, exact: np.ndarray,
                     nprobes: list[int]) -> list[float]:
    """The recall `ivf.search` would reach at each nprobe, without searching.

    An IVF search at nprobe p scans the p lists whose centroids score highest for the query,
    scoring every vector in them (in float16 here: near-ties aside, exactly), so it finds an
    exact neighbour iff that neighbour's list ranks among the first p. That needs only each
    item's list and the centroids' ranking.
    """
    invlists = ivf.invlists
    list_of = np.full(ivf.ntotal, -1, dtype=np.int64)
    for lst in range(ivf.nlist):
        size = invlists.list_size(lst)
        if size:
            list_of[faiss.rev_swig_ptr(invlists.get_ids(lst), size)] = lst
    _, ranking = ivf.quantizer.search(queries, ivf.nlist)  # lists, best centroid first
    rows = np.arange(queries.shape[0])[:, None]
    rank = np.empty_like(ranking)
    rank[rows, ranking] = np.arange(ivf.nlist)
    found = exact >= 0
    needed = rank[rows, list_of[np.where(found, exact, 0)]] + 1  # lists to probe to see it
    per_query = np.maximum(found.sum(axis=1), 1)
    return [float(np.mean(((needed <= p) & found).sum(axis=1) / per_query)) for p in nprobes]
