"""Fit engines by name: the one place that chooses how ALS factors are computed.

Every engine is a `Fit`: a users × items confidence matrix (scipy CSR, implicit's convention)
and a TrainConfig in, (user_factors, item_factors) float32 out. The evaluation, the index and
the artifact are the same whichever engine fitted, so their models are compared and served alike.

- `implicit`: implicit's CPU ALS on this machine (training/als.py), the default.
- `spark`: Spark MLlib's ALS (training/spark/), for stores past one machine's memory; needs
  `vitrine[spark]` and Java 17. Given a matrix it ships the pairs to Spark; `vitrine train
  --engine spark` instead reads the events with Spark and never holds them here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from training.config import TrainConfig

Fit = Callable[[sp.csr_matrix, TrainConfig], tuple[np.ndarray, np.ndarray]]
ENGINES = ("implicit", "spark")


def fit_function(engine: str) -> Fit:
    if engine == "implicit":
        from training.als import fit_als

        return fit_als
    if engine == "spark":
        from training.spark.als import fit_matrix

        return fit_matrix
    raise ValueError(f"unknown training engine {engine!r} (one of {', '.join(ENGINES)})")
