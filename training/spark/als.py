"""Spark MLlib's ALS with implicit preferences, mapped onto Vitrine's parameters.

Conventions differ from implicit's (which the manifest's parameters and the server's fold-in
follow): Spark's confidence is `1 + alpha·r` where implicit's is `alpha·r`, and Spark scales
`regParam` by each user's (item's) number of ratings (ALS-WR). The mapping below was chosen on
ml-latest-small and the synthetic store so that the served model (Spark's item factors with the
manifest's fold-in) matches implicit's recall (benchmarks/results/spark.md); the manifest
records Vitrine's parameters, which are what the server folds sessions in with.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from training.config import TrainConfig


def als_estimator(config: TrainConfig):
    from pyspark.ml.recommendation import ALS

    return ALS(rank=config.factors, maxIter=config.iterations, implicitPrefs=True,
               alpha=spark_alpha(config), regParam=spark_reg_param(config), seed=config.random_state,
               userCol="u", itemCol="i", ratingCol="c", nonnegative=False,
               coldStartStrategy="drop")


def spark_alpha(config: TrainConfig) -> float:
    return float(config.alpha)


def spark_reg_param(config: TrainConfig) -> float:
    return float(config.regularization)


def factors_array(df, n: int, k: int) -> np.ndarray:
    """A factors DataFrame (id, features) as an (n, k) float32 array; rows Spark never saw
    (no training signal) stay zero, as implicit leaves them."""
    out = np.zeros((n, k), dtype=np.float32)
    table = df.toArrow()
    if table.num_rows:
        ids = table["id"].to_numpy()
        feats = table["features"].combine_chunks().flatten().to_numpy()
        out[ids] = np.asarray(feats, np.float32).reshape(len(ids), k)
    return out


def fit_pairs(pairs, n_users: int, n_items: int, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Fit on a Spark DataFrame of (u int, i int, c float) confidences; only factors come back."""
    model = als_estimator(config).fit(pairs)
    return (factors_array(model.userFactors, n_users, config.factors),
            factors_array(model.itemFactors, n_items, config.factors))


def fit_matrix(matrix: sp.csr_matrix, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """The `Fit` of training/engines.py: ship a confidence matrix's pairs to Spark and fit there
    (the same matrix and split as the implicit engine; for large stores, use the Spark front)."""
    import pyarrow as pa

    from training.spark.session import spark_session

    spark = spark_session()
    coo = matrix.tocoo()
    table = pa.table({"u": pa.array(coo.row, pa.int32()), "i": pa.array(coo.col, pa.int32()),
                      "c": pa.array(coo.data, pa.float32())})
    return fit_pairs(spark.createDataFrame(table), matrix.shape[0], matrix.shape[1], config)
