"""Spark's ALS against implicit's on ml-latest-small, with the same offline protocol.

    flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/spark_parity.py

1. Same split: one confidence matrix, the same strong-generalization splits (5 seeds × 60
   held-out users, training/evaluate.py), fitted by each engine (training/engines.py); the
   held-out users are folded in with the server's fold-in and the manifest's parameters.
2. End to end: `vitrine train` and `vitrine train --engine spark` on ratings.csv (movielens
   mapping, movies.csv catalog), each published model's own evaluation (the Spark front reads,
   validates and indexes in Spark, so its held-out users are drawn from its own user codes).
Appends a section to benchmarks/results/spark.md.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from training.catalog import read_catalog  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.engines import fit_function  # noqa: E402
from training.evaluate import strong_generalization, summarize  # noqa: E402
from training.interactions import confidence_matrix  # noqa: E402
from training.mapping import load_mapping  # noqa: E402
from training.pipeline import train  # noqa: E402
from training.readers import read_events  # noqa: E402
from training.spark.pipeline import SparkSource, train_spark  # noqa: E402

ML = ROOT.parent.parent / "shared" / "datasets" / "ml-latest-small"
if not ML.is_dir():
    ML = Path("/work/shared/datasets/ml-latest-small")


def recall(summary: dict) -> str:
    m, p = summary["model"]["recall@20"], summary["popularity"]["recall@20"]
    return f"{m['mean']:.4f} ± {m['std']:.3f} (popularity {p['mean']:.4f})"


def main() -> None:
    ratings, movies = ML / "ratings.csv", ML / "movies.csv"
    mapping, catalog = load_mapping("movielens"), read_catalog(movies)
    log, _ = read_events(ratings, mapping=mapping, catalog=catalog)
    config = TrainConfig(eval_holdout_users=60)
    matrix = confidence_matrix(log, config.event_weights)
    same = {}
    for engine in ("implicit", "spark"):
        t = time.perf_counter()
        runs = [strong_generalization(matrix, config, fit_function(engine), seed) for seed in range(5)]
        for run in runs:
            run.pop("fit")
        same[engine] = (summarize(runs), [r["model"]["recall@20"] for r in runs], time.perf_counter() - t)
        print(engine, recall(same[engine][0]), flush=True)
    diff = same["spark"][0]["model"]["recall@20"]["mean"] - same["implicit"][0]["model"]["recall@20"]["mean"]
    per_seed = np.array(same["spark"][1]) - np.array(same["implicit"][1])
    seeds = ", ".join(f"{d:+.3f}" for d in per_seed)

    work = Path(tempfile.mkdtemp(prefix="vitrine-parity-"))
    t = time.perf_counter()
    e2e_implicit = train(log, TrainConfig(store=work / "implicit", eval_holdout_users=60))
    implicit_s = time.perf_counter() - t
    t = time.perf_counter()
    e2e_spark = train_spark(SparkSource(paths=[str(ratings)]),
                            TrainConfig(store=work / "spark", engine="spark", eval_holdout_users=60),
                            mapping=mapping, catalog=catalog)
    spark_s = time.perf_counter() - t
    sg_i = e2e_implicit.manifest["metrics"]["strong_generalization"]
    sg_s = e2e_spark.manifest["metrics"]["strong_generalization"]

    command = shlex.join(["flock", "/tmp/vitrine-bench.lock", "env", "OPENBLAS_NUM_THREADS=1",
                          ".venv/bin/python", "benchmarks/spark_parity.py"])
    lines = [
        "", "## Recall on ml-latest-small: Spark's ALS beside implicit's", "",
        f"Command: `{command}` (date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{e2e_implicit.manifest['counts']['events']:,} positives (rating ≥ 4), "
        f"{log.n_users} users, {log.n_items:,} movies; factors {config.factors}, "
        f"regularization {config.regularization}, alpha {config.alpha}, {config.iterations} iterations)",
        "",
        "| protocol | implicit recall@20 | Spark recall@20 | Spark − implicit |",
        "| --- | ---: | ---: | ---: |",
        f"| same matrix, same 5 splits × 60 held-out users | {recall(same['implicit'][0])} | "
        f"{recall(same['spark'][0])} | **{diff:+.4f}** (per seed {seeds}) |",
        f"| end to end (`vitrine train` vs `--engine spark`), each its own splits | {recall(sg_i)} | "
        f"{recall(sg_s)} | {sg_s['model']['recall@20']['mean'] - sg_i['model']['recall@20']['mean']:+.4f} |",
        "",
        f"Time (5 evaluation fits + the published model, shared 2-core machine): same-split evaluation "
        f"implicit {same['implicit'][2]:.0f} s, Spark {same['spark'][2]:.0f} s; end to end implicit "
        f"{implicit_s:.0f} s, Spark {spark_s:.0f} s (Spark's start-up and per-job overhead dominate "
        "at this size).",
    ]
    out = ROOT / "benchmarks" / "results" / "spark.md"
    with out.open("a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
