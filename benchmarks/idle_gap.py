"""How much a fixed piece of work slows down when calls are spaced out in time, on this machine.

    .venv/bin/python benchmarks/idle_gap.py [--rounds 5] [--calls 300]

The workload has a recommendation's memory footprint: one scan of a 5,593×64 float32 head
(1.4 MB, the 100k-item model's index), its partial sort, and 300 lookups in a 100k-entry id
dict. It runs back to back, then with a gap after each call, the gap spent either busy-waiting
(the process never sleeps, so only what happens outside it can matter) or sleeping. On a
dedicated machine the three cost the same; where a gap makes the work slower, a server's
CPU per request depends on its request rate, and a closed-loop maximum overstates what an
open-loop rate can use (loadtest/bench.py reports the worker's CPU per request at each rate).

Modes alternate within each round, so a slow phase of the machine hits all of them alike.
Prints a markdown table (median per call across rounds, and its ratio to back to back).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def _workload(seed: int = 0):
    rng = np.random.default_rng(seed)
    head = rng.standard_normal((64, 5_593), dtype=np.float32)
    ids = {f"item-{i}": i for i in range(100_000)}
    lookups = [f"item-{i}" for i in rng.integers(0, 100_000, 300)]
    queries = rng.standard_normal((64, 64), dtype=np.float32)

    def call(i: int) -> int:
        scores = queries[i % 64] @ head
        top = scores.argpartition(scores.size - 100)[-100:]
        return int(top[0]) + sum(ids[k] for k in lookups)

    return call


def _timed(call, calls: int, gap_s: float, sleep: bool) -> float:
    """Median seconds per call, with `gap_s` after each call (slept or busy-waited)."""
    times = []
    for i in range(calls):
        start = time.perf_counter()
        call(i)
        end = time.perf_counter()
        times.append(end - start)
        if gap_s:
            if sleep:
                time.sleep(gap_s)
            else:
                while time.perf_counter() - end < gap_s:
                    pass
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=300, help="calls per mode and round")
    ap.add_argument("--gaps-ms", default="0.5,1,2.5")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    call = _workload()
    for i in range(200):  # warm up: first-touch page faults, numpy's dispatch caches
        call(i)
    modes = [("back to back", 0.0, False)]
    for gap in (float(g) for g in args.gaps_ms.split(",") if g):
        modes += [(f"{gap:g} ms gaps, busy-waiting", gap / 1000, False),
                  (f"{gap:g} ms gaps, sleeping", gap / 1000, True)]
    results: dict[str, list[float]] = {name: [] for name, _, _ in modes}
    for _ in range(args.rounds):
        for name, gap, sleep in modes:
            results[name].append(_timed(call, args.calls, gap, sleep))
    base = statistics.median(results["back to back"])
    print(f"Command: `.venv/bin/python benchmarks/idle_gap.py --rounds {args.rounds} --calls {args.calls} "
          f"--gaps-ms {args.gaps_ms}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| calls | median µs per call | range of round medians | × back to back |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"| {name} | {med * 1e6:,.0f} | {min(values) * 1e6:,.0f}–{max(values) * 1e6:,.0f} "
              f"| {med / base:.2f} |")


if __name__ == "__main__":
    main()
