"""The two per-request computations of a recommendation, measured on a 100k-item model:
retrieval (IVF vs the norm head, same factors) and the session fold-in (Woodbury vs k×k solve).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/retrieval_bench.py > benchmarks/results/retrieval.md

Trains the synthetic store the latency benchmark serves (100k items, 1M events), then times one
query at a time, as the server does, in interleaved rounds (this machine's speed drifts:
compare within a run). Recall is against exact search on the same sample user queries.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from models import artifact, foldin  # noqa: E402
from models.foldin import FoldIn  # noqa: E402
from server.recommend.model import ServingModel  # noqa: E402
from training.index import HEAD_DEPTH, RECALL_K, build_index, recall_at_k  # noqa: E402
from training.topk import exact_top_k  # noqa: E402


def _median_us(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e6:.0f}"


def _serving(index: faiss.Index, art: artifact.ModelArtifact) -> ServingModel:
    return ServingModel.from_artifact(dataclasses.replace(art, index=index))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    threadpool_limits(1)
    faiss.omp_set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="vitrine-retrieval-") as tmp:
        subprocess.run([sys.executable, "-m", "vitrine.cli", "train", "--items", str(args.items),
                        "--users", str(args.items // 2), "--n-events", str(args.items * 10), "--no-eval",
                        "--store", tmp], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        art = artifact.load_current(Path(tmp), mmap=False)
    x = np.ascontiguousarray(art.item_factors)
    rng = np.random.default_rng(1)
    users = np.asarray(art.user_factors)
    queries = users[rng.choice(users.shape[0], 2_000, replace=False)]
    queries = queries[np.linalg.norm(queries, axis=1) > 1e-6]
    build_q, test_q = queries[:500], queries[500:]  # recall on queries the build did not see
    exact = exact_top_k(test_q, x, HEAD_DEPTH)
    ivf, ivf_info = build_index(x, build_q, exact_max_items=0, target_recall=0.95)  # 0: no head
    head, head_info = build_index(x, build_q, exact_max_items=50_000, target_recall=0.95)
    kinds = {"IVF (fp16 lists)": _serving(ivf, art), "norm head": _serving(head, art)}
    if head_info.kind != "norm_head_ip":
        raise SystemExit(f"the head did not qualify here: {head_info}")

    lines = [f"# Retrieval and fold-in, one query at a time ({args.items:,} items, k = {x.shape[1]})", "",
             f"Command: `OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/retrieval_bench.py` "
             f"({platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}). "
             f"Medians of {args.rounds} interleaved rounds; recall vs exact search on {len(test_q)} "
             "user queries the index build did not see.", "",
             "| index | items scanned | recall@50 | recall@100 | µs per query (top 110) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    times: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(args.rounds):
        for name, model in kinds.items():
            start = time.perf_counter()
            for q in test_q:
                model.search(q, 110)
            times[name].append((time.perf_counter() - start) / len(test_q))
    for name, model in kinds.items():
        found = np.stack([model.search(q, HEAD_DEPTH)[1] for q in test_q])
        share = ivf_info.nprobe / ivf_info.nlist
        scanned = (f"{head_info.head_items:,}" if model.scan_vectors is not None else
                   f"~{share * len(x):,.0f} (nprobe {ivf_info.nprobe} of {ivf_info.nlist})")
        lines.append(f"| {name} | {scanned} | {recall_at_k(found[:, :RECALL_K], exact[:, :RECALL_K]):.3f} | "
                     f"{recall_at_k(found, exact):.3f} | {_median_us(times[name])} |")
    ratio = statistics.median(times["IVF (fp16 lists)"]) / statistics.median(times["norm head"])
    lines += ["", f"The norm head answers **{ratio:.1f}×** faster than the IVF in this run.", ""]

    solver = FoldIn(x, art.gram, regularization=art.params["regularization"], alpha=art.params["alpha"])
    lines += ["## Session fold-in", "",
              "| session items | Woodbury µs | k×k solve µs | ratio | max abs difference |",
              "| ---: | ---: | ---: | ---: | ---: |"]
    saved = foldin.WOODBURY_MAX_ITEMS
    for n in (1, 3, 8, 16, 24, 32, 50):
        sets = [(rng.choice(len(x), n, replace=False), rng.uniform(0.05, 3.0, n)) for _ in range(200)]
        spent = {"woodbury": [], "direct": []}
        diff = 0.0
        for _ in range(args.rounds):
            for path, limit in (("woodbury", 10**9), ("direct", 0)):
                foldin.WOODBURY_MAX_ITEMS = limit
                start = time.perf_counter()
                for idx, w in sets:
                    solver.solve(idx, w)
                spent[path].append((time.perf_counter() - start) / len(sets))
        for idx, w in sets[:20]:
            foldin.WOODBURY_MAX_ITEMS = 10**9
            a = solver.solve(idx, w)
            foldin.WOODBURY_MAX_ITEMS = 0
            diff = max(diff, float(np.abs(a - solver.solve(idx, w)).max()))
        foldin.WOODBURY_MAX_ITEMS = saved
        w_med, d_med = statistics.median(spent["woodbury"]), statistics.median(spent["direct"])
        lines.append(f"| {n} | {w_med * 1e6:.0f} | {d_med * 1e6:.0f} | {d_med / w_med:.2f}× | {diff:.1e} |")
    lines += ["", f"The server takes the Woodbury path up to {saved} items (models/foldin.py)."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
