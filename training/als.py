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
