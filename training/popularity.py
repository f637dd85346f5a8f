"""Popularity: the fallback the server serves and the baseline every evaluation reports."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def item_popularity(matrix: sp.csr_matrix) -> np.ndarray:
    """Number of distinct users with a positive per item (robust to a few heavy users)."""
    m = matrix.tocsc()
    return np.diff(m.indptr).astype(np.float32)
