"""FAISS retrieval index over item factors (inner product), with its recall measured.

Three kinds, the cheapest that reaches the target recall (measured against exact search on
sample user queries and recorded in the manifest, not assumed):

- `flat_ip`: every item, exact, up to `exact_index_max_items` (50k by default).
- `norm_head_ip`: the items with the largest vector norms, scanned exactly. An inner product is
  at most the product of the norms, and ALS gives rarely-seen items tiny vectors (at 100k items
  the median norm is 1/20 of the 99th percentile), so the top-k of any query lies almost whole
  among the largest-norm items: at 100k items the top 10% held 99.9% of the exact top-100 of
  user queries. The head that reaches 0.95 there (~5,600 items) answers in 56 µs a query against
  180 µs for the IVF, with recall@50 0.996 vs 0.962 (benchmarks/results/retrieval.md). The
  head is the smallest that reaches the target at the depth the server retrieves
  (`HEAD_DEPTH`), and is used only up to `exact_index_max_items` and a fifth of the catalog:
  the IVF scans ~8% of the items at ~2.4× the cost per item, so around there it is as cheap.
- `ivf_fp16_ip`: IVF with float16 lists otherwise. A query's scan is bound by memory traffic,
  and at 100k items half the bytes made it ~30% faster (217 → 145 µs at nlist 632, nprobe 48)
  for the same recall@50 (0.953 vs 0.954 with float32 lists); the index is also half the size.
  `nprobe` is the smallest of a fixed ladder that reaches the target.

(HNSW on raw inner products recalled poorly on clustered factors in DESIGN.md's measurements,
and again here: 0.90 at efSearch 64 for 175 µs.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

from training.topk import exact_top_k

NPROBE_STEPS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
RECALL_K = 50
# A norm head's recall falls with depth (an IVF's hardly does): it must reach the target at the
# depth the server retrieves candidates (the recommend.candidates setting), not only at RECALL_K.
HEAD_DEPTH = 100


@dataclass
class IndexInfo:
    kind: str  # "flat_ip" | "norm_head_ip" | "ivf_fp16_ip"
    nlist: int | None
    nprobe: int | None
    recall_at_50: float  # against exact search on `queries` sample queries
    queries: int
    head_items: int | None = None  # norm_head_ip: items scanned
    recall_at_head_depth: float | None = None  # norm_head_ip: recall@HEAD_DEPTH
    head_depth: int | None = None  # norm_head_ip: HEAD_DEPTH, so readers need not import it

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

    rng = np.random.default_rng(seed)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    # Zero vectors (shoppers with no weighted events) tie every item at 0: their "exact top-50"
    # is arbitrary and would make any index look bad. Measure on real queries only.
    q = q[np.linalg.norm(q, axis=1) > 1e-6]
    if q.shape[0] == 0:
        q = x
    q = q[rng.choice(q.shape[0], size=min(q.shape[0], 500), replace=False)]
    # Exact neighbours, best first, by blocked matmul: 1.1 s at 1M items where faiss.knn took
    # ~6 s (training/topk.py). Their first RECALL_K columns are the exact top-RECALL_K.
    exact = exact_top_k(q, x, max(RECALL_K, HEAD_DEPTH))

    order = np.argsort(-np.linalg.norm(x, axis=1), kind="stable")
    head = norm_head_size(order, exact[:, :HEAD_DEPTH], target_recall)
    if head <= min(exact_max_items, n // 5):
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
        index.add_with_ids(x[order[:head]], order[:head].astype(np.int64))
        found = index.search(q, HEAD_DEPTH)[1]  # best first: its first RECALL_K are the top-RECALL_K
        deep = recall_at_k(found, exact[:, :HEAD_DEPTH])
        if deep >= target_recall:  # predicted from the ranks; measured here, ties and all
            recall = recall_at_k(found[:, :RECALL_K], exact[:, :RECALL_K])
            return index, IndexInfo("norm_head_ip", None, None, round(recall, 4), int(q.shape[0]),
                                    head_items=head, recall_at_head_depth=round(deep, 4),
                                    head_depth=HEAD_DEPTH)
    return _ivf(x, q, exact[:, :RECALL_K], target_recall, rng, seed)


def norm_head_size(order: np.ndarray, exact: np.ndarray, target_recall: float) -> int:
    """The fewest largest-norm items (`order`: items by norm, largest first) whose exact scan
    finds `target_recall` of each query's exact neighbours (`exact`, -1 padded).

    A scan of the head returns the head's own top-k, and an exact neighbour that is in the head
    outranks every other head item, so the scan finds exactly the neighbours in the head: the
    recall of every head size follows from the neighbours' norm ranks, without searching."""
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    found = exact >= 0
    per_query = np.maximum(found.sum(axis=1), 1)
    needed = rank[np.where(found, exact, 0)][found]  # norm rank of each neighbour
    share = np.broadcast_to(1.0 / (per_query[:, None] * exact.shape[0]), exact.shape)[found]
    by_rank = np.argsort(needed, kind="stable")
    reached = np.cumsum(share[by_rank]) >= target_recall - 1e-9
    if not reached.any():
        return order.size
    return int(needed[by_rank][np.argmax(reached)]) + 1


def _ivf(x: np.ndarray, q: np.ndarray, exact: np.ndarray, target_recall: float,
         rng: np.random.Generator, seed: int) -> tuple[faiss.Index, IndexInfo]:
    n, d = x.shape
    nlist = ivf_nlist(n)
    ivf = new_ivf(d, nlist)
    sample = x[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
    ivf.cp.seed = seed
    ivf.train(sample)
    ivf.add(x)
    k = exact.shape[1]
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
