"""Where one recommendation's ladder CPU goes, stage by stage: the same requests as
`rules_cost.py` and `blend_cost.py` (a known user's home page, an anonymous 5-view session, a
product page, a category page with a 2-view session), computed in process by the server's
own `recommend()`, with each stage's function wrapped in a timer.

    flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/ladder_stages.py \\
        --store STORE

Stages are the ladder's calls (query vector, index candidates, session blend, finishing
stage, pins) and, indented, the parts inside them (the fold-in, the blend's ranking, the
finishing stage's filters, diversity, reasons, live affinity). The wrappers add ~1 µs per
call: compare stages with one another, not with `blend_cost.py`'s totals. Wall time per call
(perf_counter_ns), single-threaded BLAS, the session memo off between rounds (every call folds
its session in).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from rules_cost import requests  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import server.recommend.blend as blend  # noqa: E402
import server.recommend.finish as finish  # noqa: E402
import server.recommend.ladder as ladder  # noqa: E402
import server.recommend.retrieval as retrieval  # noqa: E402
from models import artifact  # noqa: E402
from server.recommend.caches import Caches  # noqa: E402
from server.recommend.model import ServingModel  # noqa: E402
from server.settings import RecommendSettings  # noqa: E402

STAGES = [  # (module, function, label): the ladder's calls, then (indented) the parts inside them
    (ladder, "query_vector", "query vector"),
    (retrieval, "session_vector", "  the session's fold-in"),
    (ladder, "candidates", "index candidates (search)"),
    (ladder, "blended_candidates", "session blend"),
    (blend, "rank_session", "  its ranking (fold-in + item-item + prior)"),
    (ladder, "excluded_indices", "excluded items"),
    (ladder, "finish", "finishing stage"),
    (finish, "servable", "  servable filters"),
    (finish, "affinity_share", "  live category affinity"),
    (finish, "diverse_top", "  diversity cap"),
    (finish, "reasons", "  reasons"),
    (ladder, "place_pins", "pins"),
]


def timed(spent: collections.Counter) -> None:
    """Wrap every stage's function so that its wall time adds up in `spent[label]`."""
    clock = time.perf_counter_ns
    for module, name, label in STAGES:
        inner = getattr(module, name)

        def wrapper(*args, _inner=inner, _label=label, **kwargs):
            start = clock()
            try:
                return _inner(*args, **kwargs)
            finally:
                spent[_label] += clock() - start
        setattr(module, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ladder_stages.md")
    args = ap.parse_args()
    threadpool_limits(1)
    model = ServingModel.from_artifact(artifact.load_current(args.store))
    reqs = requests(model, np.random.default_rng(5))
    cfg = RecommendSettings()
    view = Caches(model).base_view(model)
    spent: dict[str, collections.Counter] = {kind: collections.Counter() for kind in reqs}
    totals: collections.Counter = collections.Counter()
    counter: collections.Counter = collections.Counter()
    timed(counter)
    for rnd in range(args.rounds + 1):  # the first round warms up
        for kind, calls in reqs.items():
            caches = Caches(model)
            caches._base_view = view
            counter.clear()
            start = time.perf_counter_ns()
            for q, live in calls:
                ladder.recommend(model, caches, q, live, None, cfg, view=view)
            if rnd:
                totals[kind] += time.perf_counter_ns() - start
                spent[kind].update(counter)
    n = args.rounds * 200
    kinds = list(reqs)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"# The ladder's CPU by stage ({model.n_items:,} items)", "",
             "Command: `flock /tmp/vitrine-bench.lock env OPENBLAS_NUM_THREADS=1 .venv/bin/python "
             f"benchmarks/ladder_stages.py --store STORE` ({when}, {os.cpu_count()} cores shared with "
             f"other work); {args.rounds} rounds of 200 requests per kind. µs of wall time per request, "
             "in process (no HTTP, no Redis).", "",
             "| stage | " + " | ".join(kinds) + " |", "| --- |" + " ---: |" * len(kinds),
             "| **whole ladder** | " + " | ".join(f"**{totals[k] / n / 1000:,.0f}**" for k in kinds) + " |"]
    for _, _, label in STAGES:
        cells = [f"{spent[k][label] / n / 1000:,.1f}" if spent[k][label] else "" for k in kinds]
        lines.append(f"| {label.strip() if not label.startswith('  ') else '· ' + label.strip()} | "
                     + " | ".join(cells) + " |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
