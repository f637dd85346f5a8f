"""Filtered retrieval: candidates when include-only rules (include, price bounds) allow only part
of the catalog.

Over-fetching from the index and dropping what the filter rejects fails when the filter keeps
a small share of a large catalog: at 1% of 1M items the index's nearest 100 hold a few allowed
ones, and even all of its norm head recalls 0.41-0.54 of the exact filtered top 20. So the
allowed items are kept largest-norm first and the first `scan` of them are scored exactly (one
matrix-vector product over a contiguous copy of their factors): every allowed item when there
are at most `scan` (exact filtered search), else the largest-norm ones, which hold the best
inner products (ALS gives rarely-seen items short vectors: the principle of the model's own
norm-head index, applied within the filter). A filter that keeps most of the catalog (a wide
price bound) takes the index's nearest `1.5 n / share` instead: as good, and no extra scan.
benchmarks/results/filtered_retrieval.md measures recall@20 against exact filtered search at
50%, 10%, 1% and 0.1% of 1M items, against over-fetching and FAISS ID selectors.
"""

from __future__ import annotations

import math

import numpy as np

from server.recommend.model import ServingModel

# A filter keeping at least this share of the items takes the index's nearest 1.5 n / share and
# drops the rest: at 50% that is 300 for 100 candidates, within what the index recalls well.
WIDE = 0.5


class AllowedSet:
    """The model's items an include-only filter allows: the largest-norm `scan` of them, their
    factors as a contiguous (k, n) block, and how many the filter allows in all."""

    def __init__(self, model: ServingModel, allowed: np.ndarray, scan: int):
        self.mask = np.ascontiguousarray(allowed[: model.n_items])
        rows = np.flatnonzero(self.mask)
        self.size = int(rows.size)
        self.share = self.size / max(model.n_items, 1)
        if rows.size > scan:
            norms = model.item_norms[rows]
            rows = rows[np.argpartition(-norms, scan - 1)[:scan]]
        self.rows = rows
        self.exact = self.size <= scan
        self.block = np.ascontiguousarray(model.item_factors[rows].T)

    @property
    def nbytes(self) -> int:
        return self.block.nbytes + self.rows.nbytes + self.mask.nbytes


def allowed_candidates(model: ServingModel, allowed: AllowedSet, vec: np.ndarray, n: int, shown: np.ndarray,
                       category: np.ndarray | None = None, code: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The `n` best items an include-only filter allows (and `shown` shows, in category `code`
    if given): from the index when the filter is wide, else from the allowed set's scan."""
    if allowed.share >= WIDE and code is None:
        # n / share, and half again: enough allowed ones among them whatever the draw.
        scores, items = model.search(vec, min(model.index_size, math.ceil(1.5 * n / allowed.share)))
        ok = items >= 0
        ok &= allowed.mask[np.maximum(items, 0)]
        return items[ok], scores[ok]
    return filtered_candidates(allowed, vec, n, shown, category, code)


def filtered_candidates(allowed: AllowedSet, vec: np.ndarray, n: int, shown: np.ndarray,
                        category: np.ndarray | None = None, code: int | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The `n` best allowed items for `vec` among those `shown` (a mask over the view's rows:
    items not shown can't use a candidate's place), optionally in category `code`."""
    rows = allowed.rows
    scores = vec @ allowed.block
    if code is None and rows.size > 2 * n:
        # The best 2n first, then which of them may be shown: a gather over 2n items, not over
        # every allowed one (enough unless most of the best are out of stock or excluded).
        top = scores.argpartition(rows.size - 2 * n)[rows.size - 2 * n:]
        top = top[shown[rows[top]]]
        if top.size >= n:
            top = top[scores[top].argpartition(top.size - n)[top.size - n:]]
            return rows[top], scores[top]
    keep = shown[rows]
    if code is not None:
        keep &= category[rows] == code
    if not keep.all():
        rows, scores = rows[keep], scores[keep]
    if rows.size > n:
        top = scores.argpartition(rows.size - n)[rows.size - n:]
        rows, scores = rows[top], scores[top]
    return rows, scores
