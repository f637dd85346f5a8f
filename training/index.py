"""FAISS retrieval index over item factors (inner product), with its recall measured.

Exact search up to `exact_index_max_items` (flat inner product: 100k items ≈ 0.9 ms a query);
above it an IVF index, because exact search at 1M items costs ~10 ms. IVF's recall is measured
against exact search on sample queries at build time, raising `nprobe` until it reaches the
target; the result is recorded in the manifest, not assumed. (HNSW on raw inner products
recalled poorly on clustered factors in DESIGN.md's measurements.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

NPROBE_STEPS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
RECALL_K = 50


@dataclass
class IndexInfo:
    kind: str  # "flat_ip" | "ivf_flat_ip"
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
    flat = faiss.IndexFlatIP(d)
    flat.add(x)
    if n <= exact_max_items:
        return flat, IndexInfo("flat_ip", None, None, 1.0, 0)

    nlist = int(4 * math.sqrt(n))
    quantizer = faiss.IndexFlatIP(d)
    ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
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
    _, exact = flat.search(q, k)
    recall = 0.0
    for nprobe in NPROBE_STEPS:
        ivf.nprobe = min(nprobe, nlist)
        _, approx = ivf.search(q, k)
        recall = recall_at_k(approx, exact)
        if recall >= target_recall:
            break
    return ivf, IndexInfo("ivf_flat_ip", nlist, int(ivf.nprobe), round(recall, 4), int(q.shape[0]))
