"""Fit implicit's ALS on a confidence matrix, with native threads kept under control."""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from training.config import TrainConfig


def fit_als(matrix: sp.csr_matrix, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Return (user_factors, item_factors), float32, from a users × items confidence matrix.

    implicit parallelises over users/items with its own threads; BLAS is pinned to one thread
    because nested BLAS threads only contend with implicit's (implicit warns about it too).
    """
    from implicit.cpu.als import AlternatingLeastSquares

    with threadpool_limits(1, "blas"):  # implicit checks the BLAS threads when constructed
        model = AlternatingLeastSquares(
            factors=config.factors,
            regularization=config.regularization,
            alpha=config.alpha,
            iterations=config.iterations,
            random_state=config.random_state,
            num_threads=os.cpu_count() or 1,
        )
        model.fit(matrix.astype(np.float32), show_progress=False)
    return (np.ascontiguousarray(model.user_factors, dtype=np.float32),
            np.ascontiguousarray(model.item_factors, dtype=np.float32))


class ResumableALS:
    """One implicit ALS model fitted in steps: `fit_to(matrix, n)` runs sweeps until n in total.

    implicit keeps its factors between `fit` calls, so the model search's successive halving
    (training/search.py) extends a surviving candidate instead of fitting it again from scratch.
    """

    def __init__(self, config: TrainConfig) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        with threadpool_limits(1, "blas"):
            self.model = AlternatingLeastSquares(
                factors=config.factors, regularization=config.regularization, alpha=config.alpha,
                iterations=0, random_state=config.random_state, num_threads=os.cpu_count() or 1)
        self.iterations = 0

    def fit_to(self, matrix: sp.csr_matrix, iterations: int) -> tuple[np.ndarray, np.ndarray]:
        """Sweep until `iterations` in total; returns (user_factors, item_factors) copies."""
        if iterations > self.iterations:
            self.model.iterations = iterations - self.iterations
            with threadpool_limits(1, "blas"):
                self.model.fit(matrix.astype(np.float32), show_progress=False)
            self.iterations = iterations
        return (np.array(self.model.user_factors, dtype=np.float32),
                np.array(self.model.item_factors, dtype=np.float32))
