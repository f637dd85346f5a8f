"""Training at scale on Spark (local mode) beside implicit, on the same synthetic log.

    flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/spark_scale.py

The log is train_scale.py's (1M items, 500k customers, 10M events, seed 0), written once as
Parquet. implicit's run is `vitrine train` on that file (the in-memory pipeline); Spark's is
`vitrine train --engine spark` on the same file (events read, validated and turned into
confidence pairs in Spark; only factors and per-user/per-item tables come back). Both with one
evaluation seed of 2,000 held-out users and no temporal protocol, as train_scale.py. Each run's
stage timings and max RSS of this process are reported; Spark's JVM is a child process, its
memory is not in that number. Appends a section to benchmarks/results/spark.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.config import TrainConfig  # noqa: E402
from training.pipeline import train  # noqa: E402
from training.readers import read_events  # noqa: E402
from training.spark.pipeline import SparkSource, train_spark  # noqa: E402
from training.spark.session import SparkOptions  # noqa: E402
from training.synthetic import generate_store  # noqa: E402
from training.writers import write_events  # noqa: E402


def recall(manifest: dict) -> str:
    sg = manifest["metrics"]["strong_generalization"]
    return f"{sg['model']['recall@20']['mean']:.3f} (popularity {sg['popularity']['recall@20']['mean']:.3f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=500_000)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--driver-memory", default="8g")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "spark.md")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vitrine-spark-bench-"))
    store = generate_store(n_items=args.items, n_users=args.users, n_events=args.events, seed=0)
    path = write_events(store.log, work / "events.parquet", session=store.session)
    del store
    config = dict(eval_seeds=1, eval_holdout_users=2000, eval_temporal=False)

    t = time.perf_counter()
    log, _ = read_events(path)
    implicit = train(log, TrainConfig(store=work / "implicit", **config),
                     timings={"load": time.perf_counter() - t})
    implicit_s = time.perf_counter() - t
    del log
    print(f"implicit: {implicit_s:.1f} s", flush=True)

    t = time.perf_counter()
    spark = train_spark(SparkSource(paths=[str(path)]),
                        TrainConfig(store=work / "spark", engine="spark", **config),
                        options=SparkOptions(driver_memory=args.driver_memory, local_dir=str(work)))
    spark_s = time.perf_counter() - t
    print(f"spark: {spark_s:.1f} s", flush=True)

    command = shlex.join(["flock", "/tmp/vitrine-bench.lock", "env", "OPENBLAS_NUM_THREADS=1",
                          ".venv/bin/python", "benchmarks/spark_scale.py", *sys.argv[1:]])
    counts = implicit.manifest["counts"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    stages = list(dict.fromkeys([*implicit.timings, *spark.timings]))
    lines = [
        "", f"## Training time at {args.events:,} events: Spark (local mode) beside implicit", "",
        f"Command: `{command}`",
        f"Machine: {os.cpu_count()} cores (shared with other engineers' work: timings are indicative), "
        f"{platform.machine()}, Python {platform.python_version()}, "
        f"Spark {spark.manifest['source']['spark']}; "
        f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Log: {counts['events']:,} events, {counts['items']:,} items, {counts['users']:,} customers, "
        f"{counts['interactions']:,} user-item pairs (Spark counted "
        f"{spark.manifest['counts']['interactions']:,}).",
        "",
        "| stage | implicit (s) | Spark local (s) |",
        "| --- | ---: | ---: |",
    ] + [f"| {s} | {implicit.timings.get(s, 0):.1f} | {spark.timings.get(s, 0):.1f} |" for s in stages] + [
        f"| **total** | **{implicit_s:.1f}** | **{spark_s:.1f}** |",
        "",
        "Strong generalization, 2,000 held-out users, one seed: "
        f"implicit recall@20 {recall(implicit.manifest)}; "
        f"Spark {recall(spark.manifest)} (each engine draws its own held-out users).",
        f"Max RSS of the Python process: {rss:.1f} GiB.",
    ]
    with args.out.open("a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
