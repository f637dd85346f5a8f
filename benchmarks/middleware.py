"""CPU cost per request of the cross-cutting work (server/web/middleware.py, security.py,
ratelimit.py): request id, metrics, the JSON access log, the API-key check, CORS, the event
rate limit, measured on real aiohttp request objects in one process, in the same run, against a
bare handler call. Writes benchmarks/results/middleware.md.

    .venv/bin/python -m benchmarks.middleware [--n 30000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from server.ops.logs import configure_logging
from server.ops.metrics import Metrics
from server.settings import Settings
from server.web.api import Api
from server.web.middleware import request_context
from server.web.ratelimit import EventLimiter

OUT = Path(__file__).resolve().parent / "results" / "middleware.md"
KEY, ORIGIN = "pk-bench-0123456789abcdef", "https://shop.example"


def _variant(settings: Settings) -> tuple[web.Application, object, object]:
    api = Api("bench")

    @api.get("/v1/trending", summary="bench")
    async def trending(request, p):
        return web.Response(body=b"{}", content_type="application/json")

    app = web.Application()
    api.mount(app, settings)
    return app, request_context(settings, Metrics()), app.router.routes()._routes[0].handler


async def _per_request_us(settings: Settings, headers: dict, n: int, *, middleware: bool = True) -> float:
    app, mw, handler = _variant(settings)
    request = make_mocked_request("GET", "/v1/trending", headers=headers, app=app)
    request._match_info = await app.router.resolve(request)
    call = (lambda: mw(request, handler)) if middleware else (lambda: handler(request))
    for _ in range(1000):  # warm up: labelled metric children, caches
        await call()
    best = float("inf")
    for _ in range(5):  # the best of 5: this VM's speed drifts; compare within the run
        start = time.process_time()
        for _ in range(n):
            await call()
        best = min(best, (time.process_time() - start) / n * 1e6)
    return best


async def run(n: int) -> list[tuple[str, float]]:
    base = Settings().replace(**{"server.access_log_sample": 0.0})
    keyed = base.replace(**{"security.public_keys": [KEY, "another-key"], "security.admin_token": "adm"})
    cors = keyed.replace(**{"security.cors_origins": [ORIGIN]})
    logged = cors.replace(**{"server.access_log_sample": 1.0})
    sampled = cors.replace(**{"server.access_log_sample": 0.1})
    with open(os.devnull, "w") as devnull:
        configure_logging(logged.server, stream=devnull)
        browser = {"X-API-Key": KEY, "Origin": ORIGIN}
        rows = [
            ("bare handler (parse + response), no middleware",
             await _per_request_us(base, {}, n, middleware=False)),
            ("+ middleware: id, timing, metrics (no keys, no CORS, access log off)",
             await _per_request_us(base, {}, n)),
            ("+ API key check (2 keys + admin, constant time)",
             await _per_request_us(keyed, {"X-API-Key": KEY}, n)),
            ("+ CORS (an allowed Origin)", await _per_request_us(cors, browser, n)),
            ("+ JSON access log, every request (to /dev/null)", await _per_request_us(logged, browser, n)),
            ("+ JSON access log sampled at 10% (the default)", await _per_request_us(sampled, browser, n)),
        ]
    limiter = EventLimiter(rate_per_s=1e9, burst=1e9)
    start = time.process_time()
    for _ in range(n):
        limiter.take("k1234567", 10)
    rows.append(("event rate limit: one take() (events only)", (time.process_time() - start) / n * 1e6))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30_000)
    args = ap.parse_args()
    rows = asyncio.run(run(args.n))
    base = rows[0][1]
    lines = ["# Middleware CPU per request", "",
             f"`.venv/bin/python -m benchmarks.middleware --n {args.n}` ({time.strftime('%Y-%m-%d')}, "
             "best of 5 rounds, CPU time of one process, this shared 2-core VM: compare rows, not runs). "
             "For scale: a whole recommendation costs the worker 288-472 µs, an event 85 µs (DESIGN.md, "
             "loadtest/cost.py).", "",
             "| configuration | CPU µs/request | × bare |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {us:.1f} | {us / base:.2f} |" for name, us in rows]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
