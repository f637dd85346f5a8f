"""The worker's CPU as the benchmark reads it from /proc: per request over a run, sampled
through a run, and split between the calm and the behind stretches of a fixed-rate run."""

import asyncio
import math
import os
import threading
import time

import pytest

from loadtest.worker_cpu import calm_and_behind, cpu_seconds, steal_seconds, timeline, with_server_cpu

linux = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")


def _burn(seconds: float) -> None:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass


@linux
async def test_server_cpu_is_charged_per_request_and_as_a_busy_share():
    async def run(burn_s: float, sleep_s: float, requests: int) -> dict:
        _burn(burn_s)
        await asyncio.sleep(sleep_s)
        return {"requests": requests}

    start = time.perf_counter()
    busy = await with_server_cpu(run(0.3, 0.0, 10), os.getpid())
    wall = time.perf_counter() - start
    assert busy["requests"] == 10
    assert 25_000 <= busy["server_cpu_us"] <= 45_000  # 0.3 s over 10 requests, ±10 ms ticks
    # The busy share is that CPU over the run's wall time (which a loaded machine stretches).
    assert busy["server_busy"] == pytest.approx(busy["server_cpu_us"] * 10 / 1e6 / wall, rel=0.1)
    idle = await with_server_cpu(run(0.0, 0.3, 10), os.getpid())
    assert idle["server_cpu_us"] < 5_000 and idle["server_busy"] < 0.2
    assert math.isnan(cpu_seconds(2**22 + 12345))  # no such process


@linux
def test_cpu_of_every_thread_counts():
    before = cpu_seconds(os.getpid())
    worker = threading.Thread(target=_burn, args=(0.2,))
    worker.start()
    worker.join()
    assert 0.17 <= cpu_seconds(os.getpid()) - before < 0.4  # ended threads included, ±10 ms ticks


@linux
async def test_timeline_samples_the_workers_cpu_through_a_run():
    worker = threading.Thread(target=_burn, args=(0.25,))
    async with timeline(os.getpid(), period_s=0.05) as samples:
        worker.start()
        await asyncio.to_thread(worker.join)
        await asyncio.sleep(0.1)
    times, cpu, steal = zip(*samples, strict=True)
    assert len(samples) >= 5 and list(times) == sorted(times)
    assert 0.18 <= cpu[-1] - cpu[0] < 0.5  # the thread's 0.25 s, in ticks the kernel samples
    assert list(cpu) == sorted(cpu)
    assert all(math.isnan(s) for s in steal) or all(s >= 0 for s in steal)
    assert math.isnan(steal_seconds({10**6}))  # no such core


def test_calm_and_behind_splits_the_run_by_late_answers():
    # Ten 0.1 s windows; the worker 50% busy with 10 answers a window, except windows 5 and 6:
    # 100% busy, answers 30 ms late, and a quarter of the time stolen.
    samples, cpu, steal = [], 0.0, 0.0
    for w in range(11):
        samples.append((w / 10, cpu, steal))
        cpu += 0.1 if w in (5, 6) else 0.05
        steal += 0.025 if w in (5, 6) else 0.0
    results = []  # (name, status, latency, scheduled send): done = send + latency, in window w
    for w in range(10):
        latency = 0.030 if w in (5, 6) else 0.002
        results += [("x", 200, latency, w / 10 + i / 100 + 0.005 - latency) for i in range(10)]
    split = calm_and_behind(samples, results)
    calm, behind = split["calm"], split["behind"]
    assert calm["seconds"] == pytest.approx(0.8) and behind["seconds"] == pytest.approx(0.2)
    assert calm["requests"] == 80 and behind["requests"] == 20
    assert calm["cpu_us"] == pytest.approx(5_000) and behind["cpu_us"] == pytest.approx(10_000)
    assert calm["busy"] == pytest.approx(0.5) and behind["busy"] == pytest.approx(1.0)
    assert calm["steal"] == pytest.approx(0.0) and behind["steal"] == pytest.approx(0.25)

    on_time = [(name, status, 0.002, at) for name, status, _, at in results]
    assert calm_and_behind(samples, on_time)["behind"]["seconds"] == 0
    assert math.isnan(calm_and_behind(samples[:1], results)["calm"]["cpu_us"])
