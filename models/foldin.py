"""Fold-in: a user vector from a set of items, with the item factors held fixed.

This is the one implementation used by the trainer's evaluation and by the server for live
sessions, so offline metrics measure exactly what the server serves. It solves the same
normal equations as implicit's ALS user step (Hu, Koren & Volinsky 2008), in implicit's
convention where the confidence of an observed item is `alpha * weight`:

    (YᵀY + λI + Σᵢ (cᵢ - 1) yᵢyᵢᵀ) x = Σᵢ cᵢ yᵢ

YᵀY (the Gram matrix) is precomputed once per model. For a few items (a live session) the
solve goes through the Woodbury identity with B = YᵀY + λI inverted once per model, so only an
n×n system is solved; otherwise one k×k solve, O(n·k² + k³) (~60 µs at k = 64 here).
"""

from __future__ import annotations

import numpy as np

# Up to this many items the Woodbury solve (n×n) is cheaper than the k×k one: measured at
# k = 64 (benchmarks/results/retrieval.md), about half the time up to 24 items; at 50 no faster.
WOODBURY_MAX_ITEMS = 24


def gram_matrix(item_factors: np.ndarray) -> np.ndarray:
    """YᵀY in float64: computed once per model and stored in the artifact."""
    y = np.asarray(item_factors, dtype=np.float64)
    return y.T @ y


class FoldIn:
    """The fold-in of one model, with its constant part (YᵀY + λI) computed once.

    The server keeps one per served model and calls it per request; `fold_in` below builds
    one per call. Both run the same `solve`, so offline metrics measure what is served."""

    def __init__(self, item_factors: np.ndarray, gram: np.ndarray, *, regularization: float, alpha: float):
        self.item_factors = item_factors
        self.base = np.asarray(gram, dtype=np.float64) + regularization * np.eye(gram.shape[0])
        self.base_inv = np.linalg.inv(self.base)  # B is symmetric positive definite (λ > 0)
        self.alpha = float(alpha)

    def solve(self, unique_indices: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The user vector for distinct item indices with positive raw weights (float32)."""
        if len(unique_indices) == 0:
            return np.zeros(self.base.shape[0], dtype=np.float32)
        # take(): half the time of fancy indexing for a few rows of a large matrix
        y = self.item_factors.take(unique_indices, axis=0).astype(np.float64)
        c = self.alpha * np.asarray(weights, dtype=np.float64)
        if len(unique_indices) > WOODBURY_MAX_ITEMS:
            a = self.base + (y.T * (c - 1.0)) @ y
            return np.linalg.solve(a, c @ y).astype(np.float32)
        # A = B + YᵀDY with D = diag(c - 1) (c - 1 may be ≤ 0: decayed events), b = Yᵀc:
        # A⁻¹b = z - B⁻¹Yᵀ (I + D·Y B⁻¹Yᵀ)⁻¹ D·Y z, with z = B⁻¹b. This form never inverts D,
        # and I + D·Y B⁻¹Yᵀ is invertible: Y B⁻¹Yᵀ has eigenvalues in [0, 1) because the rows
        # of Y are rows of the factors B was built from, and c > 0 keeps d = c - 1 > -1. It
        # nears singular only where A itself does (tests: equal to the k×k solve to 1e-5).
        p = y @ self.base_inv  # Y B⁻¹ (n×k)
        z = c @ p
        d = c - 1.0
        m = d[:, None] * (p @ y.T)
        m.flat[:: m.shape[0] + 1] += 1.0
        t = np.linalg.solve(m, d * (y @ z))
        return (z - t @ p).astype(np.float32)

    def __call__(self, item_indices: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Like `solve`, for any indices: duplicates are summed (as implicit sums duplicate
        entries of a sparse row) and non-positive weights ignored."""
        idx = np.asarray(item_indices, dtype=np.int64)
        w = np.asarray(weights, dtype=np.float64)
        if idx.size:
            idx, inverse = np.unique(idx, return_inverse=True)
            w = np.bincount(inverse, weights=w, minlength=idx.size)
            keep = w > 0
            idx, w = idx[keep], w[keep]
        return self.solve(idx, w)


def fold_in(
    item_factors: np.ndarray,
    gram: np.ndarray,
    item_indices: np.ndarray,
    weights: np.ndarray,
    *,
    regularization: float,
    alpha: float,
) -> np.ndarray:
    """Return the float32 user vector that ALS would give a user with these items and weights.

    `weights` are the raw confidence weights (before alpha), one per index; duplicate indices
    are summed, as implicit sums duplicate entries of a sparse row. Non-positive weights are
    ignored. An empty set gives the zero vector.
    """
    return FoldIn(item_factors, gram, regularization=regularization, alpha=alpha)(item_indices, weights)
