"""The server worker's CPU, read from /proc: what a request costs at a given rate, and whether
the slow stretches of a fixed-rate run were the worker falling behind on work it could do, or
the same work costing it more (or the hypervisor taking its core away).

Linux only; elsewhere every reading is NaN and the benchmark still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import numpy as np

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process `pid` so far, all its threads, ended ones included;
    NaN where there is none. In clock ticks (10 ms): a 0.1 s window reads ±10%, but the error
    of each window is as likely up as down, so a stretch of windows sums close to the truth.
    (The ns-precise per-thread schedstat loses a thread's time when it ends.)"""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _TICK


def steal_seconds(cores: set[int]) -> float:
    """Time the hypervisor ran something else on these virtual cores (/proc/stat's steal
    column), averaged over them; NaN where there is none."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return float("nan")
    names = {f"cpu{c}" for c in cores}
    steal = [int(f[8]) for f in (line.split() for line in lines) if f and f[0] in names and len(f) > 8]
    return sum(steal) / len(steal) / _TICK if steal else float("nan")


async def with_server_cpu(run: Awaitable[dict], pid: int) -> dict:
    """`run`'s result plus the worker's CPU per request and its busy share over the run: what a
    request costs at that rate. On a shared VM that cost grows as requests spread out in time
    (benchmarks/idle_gap.py), so a rate's headroom is read from its own cost, not from the
    closed-loop one."""
    before, start = cpu_seconds(pid), time.perf_counter()
    result = await run
    cpu, wall = cpu_seconds(pid) - before, time.perf_counter() - start
    return {**result, "server_cpu_us": cpu / max(result["requests"], 1) * 1e6, "server_busy": cpu / wall}


@contextlib.asynccontextmanager
async def timeline(pid: int, period_s: float = 0.1) -> AsyncIterator[list[tuple[float, float, float]]]:
    """Samples (perf_counter time, worker CPU seconds, steal seconds of the worker's cores)
    every `period_s` while the block runs, and once more at its end."""
    try:
        cores = os.sched_getaffinity(pid)
    except (AttributeError, OSError):
        cores = set()
    samples: list[tuple[float, float, float]] = []

    def sample() -> None:
        samples.append((time.perf_counter(), cpu_seconds(pid), steal_seconds(cores)))

    async def every_period() -> None:
        while True:
            sample()
            await asyncio.sleep(period_s)

    task = asyncio.create_task(every_period())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sample()


def calm_and_behind(samples: list[tuple[float, float, float]], results: list, over_s: float = 0.010) -> dict:
    """A fixed-rate run's time split into the windows between `samples`: "behind" where an
    answer arrived more than `over_s` after its scheduled send, "calm" elsewhere. For each, its
    seconds, the answers completed in it, the worker's CPU per answer and busy share, and the
    steal share of its core. Behind windows at the calm CPU per answer and full busy are the
    worker short of capacity for the rate; a higher CPU per answer there is the same work
    costing more; steal is the core taken away. `results` are open-loop rows (name, status,
    latency, scheduled send time), on the samples' clock."""
    empty = {"seconds": 0.0, "requests": 0, "cpu_us": math.nan, "busy": math.nan, "steal": math.nan}
    if len(samples) < 2:
        return {"calm": dict(empty), "behind": dict(empty)}
    t, cpu, steal = (np.array(column, dtype=np.float64) for column in zip(*samples, strict=True))
    windows = t.size - 1
    done = np.array([at + latency for _, _, latency, at in results], dtype=np.float64)
    late = np.array([latency > over_s for _, _, latency, _ in results], dtype=bool)
    window = np.searchsorted(t, done, side="right") - 1
    inside = (window >= 0) & (window < windows)
    answers = np.bincount(window[inside], minlength=windows)
    behind = np.bincount(window[inside], weights=late[inside], minlength=windows) > 0
    wall, used, stolen = np.diff(t), np.diff(cpu), np.diff(steal)
    out = {}
    for name, mask in (("calm", ~behind), ("behind", behind)):
        seconds, n = float(wall[mask].sum()), int(answers[mask].sum())
        if seconds == 0:
            out[name] = dict(empty)
            continue
        out[name] = {"seconds": seconds, "requests": n,
                     "cpu_us": float(used[mask].sum()) / n * 1e6 if n else math.nan,
                     "busy": float(used[mask].sum()) / seconds, "steal": float(stolen[mask].sum()) / seconds}
    return out
