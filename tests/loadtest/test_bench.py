"""The benchmark's measurement: an open-loop run sends every scheduled request and waits for
each answer; slow requests are grouped into episodes by send time; the worker's CPU per
request is read from /proc around each run."""

import asyncio
import math
import os
import time

import pytest
from aiohttp import web

from loadtest.bench import Traffic, cpu_seconds, open_loop, slow_episodes, with_server_cpu


async def test_open_loop_sends_the_schedule_and_times_from_the_send_time(aiohttp_server):
    seen = []

    async def healthz(request: web.Request) -> web.Response:
        seen.append(time.perf_counter())
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    server = await aiohttp_server(app)
    result = await open_loop(f"http://{server.host}:{server.port}", Traffic(None), rate=400, duration_s=0.5)
    assert result["requests"] == len(seen) == 200
    assert result["errors"] == {}
    assert 0 < result["p50"] <= result["p99"] <= result["max"] < 1000
    # Sent on schedule: the 200 arrivals span the run's half second, not a burst.
    assert 0.4 < seen[-1] - seen[0] < 0.75


def test_slow_episodes_groups_slow_requests_by_send_time():
    fast, slow = 0.002, 0.030
    results = [("x", 200, fast, t / 1000) for t in range(0, 1000, 5)]  # 200 fast requests over 1 s
    results += [("x", 200, slow, 2.0 + t / 1000) for t in range(0, 300, 10)]  # 30 slow in 0.29 s
    results += [("x", 200, slow, 3.0), ("x", 200, slow, 3.03), ("x", 200, slow, 4.0)]
    assert slow_episodes(results) == {"slow": 33, "episodes": 3, "longest_s": pytest.approx(0.29)}
    assert slow_episodes([("x", 200, fast, 0.0)]) == {"slow": 0, "episodes": 0, "longest_s": 0.0}


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
async def test_server_cpu_is_charged_per_request_and_as_a_busy_share():
    async def run(burn_s: float, sleep_s: float, requests: int) -> dict:
        start = time.thread_time()
        while time.thread_time() - start < burn_s:
            pass
        await asyncio.sleep(sleep_s)
        return {"requests": requests}

    busy = await with_server_cpu(run(0.3, 0.0, 10), os.getpid())
    assert busy["requests"] == 10
    assert 25_000 <= busy["server_cpu_us"] <= 45_000  # 0.3 s over 10 requests, ±10 ms ticks
    assert busy["server_busy"] > 0.5
    idle = await with_server_cpu(run(0.0, 0.3, 10), os.getpid())
    assert idle["server_cpu_us"] < 5_000 and idle["server_busy"] < 0.2
    assert math.isnan(cpu_seconds(2**22 + 12345))  # no such process
