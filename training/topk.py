"""Exact top-k by inner product over a large catalog: blocked matmul with a running threshold.

The index's recall is measured against exact neighbours of 500 sample queries. On this 2-core
machine `faiss.knn` took 5-9 s for them over 1M items, though the matrix product alone takes
0.8 s (numpy, one thread). Here, after the first block, an item is kept only if it beats the
query's current k-th best score, so all but a few thousand scores per query are discarded by
one comparison: 1.1 s, same neighbours. (For the evaluation's 2,000 queries × depth ~240,
faiss.knn is the faster one, ~4 s against ~6 s, so evaluate.py keeps it.)
"""

from __future__ import annotations

import numpy as np

_BLOCK = 4096  # items per matmul: 500 queries × 4096 scores stay in cache-sized pieces


def exact_top_k(queries: np.ndarray, items: np.ndarray, k: int, *, block: int = _BLOCK) -> np.ndarray:
    """The indices of the `k` items with the highest inner product with each query, best first.

    Returns (n_queries, min(k, n_items)) int64. Items tied with the k-th score may be swapped
    for one another (as in any top-k).
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    x = np.ascontiguousarray(items, dtype=np.float32)
    nq, n = q.shape[0], x.shape[0]
    k = min(k, n)
    if nq == 0 or k == 0:
        return np.zeros((nq, k), dtype=np.int64)
    first = max(block, k)
    scores = q @ x[:first].T
    m = scores.shape[1]
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k] if m > k else np.tile(np.arange(m), (nq, 1))
    top = _Top(nq, k, best, np.take_along_axis(scores, best, axis=1))
    buf = np.empty((nq, block), dtype=np.float32)
    for start in range(first, n, block):
        xb = x[start:start + block]
        scores = np.matmul(q, xb.T, out=buf) if xb.shape[0] == block else q @ xb.T
        hits = np.flatnonzero(scores > top.threshold[:, None])  # 6× faster than a 2-D nonzero
        if hits.size:
            rows, cols = np.divmod(hits, scores.shape[1])
            top.offer(rows, cols + start, scores.ravel()[hits])
    return top.result()


class _Top:
    """The k best (item, score) of each query: a dense current best plus candidates not yet
    merged, merged (one sort) when they pile up and at the end."""

    def __init__(self, nq: int, k: int, items: np.ndarray, scores: np.ndarray) -> None:
        self.nq, self.k = nq, k
        self.rows = np.repeat(np.arange(nq), k)
        self.items, self.scores = items.ravel().astype(np.int64), scores.ravel()
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.n_pending = 0
        self.threshold = np.full(nq, -np.inf, dtype=np.float32)
        self._merge()

    def offer(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray) -> None:
        self.pending.append((rows, items, scores))
        self.n_pending += rows.size
        if self.n_pending > self.nq * self.k:
            self._merge()

    def _merge(self) -> None:
        rows = np.concatenate([self.rows] + [p[0] for p in self.pending])
        items = np.concatenate([self.items] + [p[1] for p in self.pending])
        scores = np.concatenate([self.scores] + [p[2] for p in self.pending])
        order = np.lexsort((items, -scores, rows))  # by query, best score first, earlier item on ties
        rows, items, scores = rows[order], items[order], scores[order]
        rank = np.arange(rows.size) - np.searchsorted(rows, rows)  # position within its query
        keep = rank < self.k
        self.rows, self.items, self.scores = rows[keep], items[keep], scores[keep]
        self.pending, self.n_pending = [], 0
        last = rank[keep] == self.k - 1  # a query with k results: its k-th score is the bar
        self.threshold[self.rows[last]] = self.scores[last]

    def result(self) -> np.ndarray:
        if self.pending:
            self._merge()
        out = np.full((self.nq, self.k), -1, dtype=np.int64)
        out[self.rows, np.arange(self.rows.size) - np.searchsorted(self.rows, self.rows)] = self.items
        return out
