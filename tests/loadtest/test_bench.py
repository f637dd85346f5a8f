"""The benchmark's measurement: an open-loop run sends every scheduled request and waits for
each answer; slow requests are grouped into episodes by send time."""

import os
import time

import pytest
from aiohttp import web

from loadtest.bench import open_loop, slow_episodes
from loadtest.traffic import Traffic


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


async def test_open_loop_reports_the_workers_cost_calm_and_behind(aiohttp_server):
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    server = await aiohttp_server(app)
    # The "worker" is this process: its own server answers well within 10 ms.
    result = await open_loop(f"http://{server.host}:{server.port}", Traffic(None), rate=200,
                             duration_s=0.5, worker_pid=os.getpid())
    calm, behind = result["worker"]["calm"], result["worker"]["behind"]
    assert result["requests"] == 100
    assert 0.4 < calm["seconds"] + behind["seconds"] < 1.0
    assert calm["requests"] + behind["requests"] >= 95  # the last answers can land after the last sample
    assert calm["cpu_us"] > 0 and 0 < calm["busy"] <= 1.05
