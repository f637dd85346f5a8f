"""How two workers share incoming connections: each with its own SO_REUSEPORT socket (what
`vitrine serve --workers N` does) against one listening socket inherited by both (gunicorn's
model: the master binds, the workers accept on the same socket). A trivial aiohttp app answers
its pid; the client opens a new connection per request. Writes benchmarks/results/accept_balance.md.

    .venv/bin/python -m benchmarks.accept_balance [--requests 4000] [--concurrency 1,8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import time
from collections import Counter
from pathlib import Path

import aiohttp

OUT = Path(__file__).resolve().parent / "results" / "accept_balance.md"


def _serve(port: int, sock: socket.socket | None) -> None:
    import uvloop
    from aiohttp import web

    async def pid(request: web.Request) -> web.Response:
        return web.Response(text=str(os.getpid()))

    app = web.Application()
    app.router.add_get("/", pid)
    uvloop.install()
    if sock is None:
        web.run_app(app, host="127.0.0.1", port=port, reuse_port=True, print=None, access_log=None)
    else:
        web.run_app(app, sock=sock, print=None, access_log=None)


async def _load(port: int, n: int, concurrency: int) -> Counter:
    seen: Counter = Counter()
    left = iter(range(n))
    connector = aiohttp.TCPConnector(force_close=True, limit=concurrency)  # a new connection each time
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            for _ in left:
                async with session.get(f"http://127.0.0.1:{port}/") as resp:
                    seen[await resp.text()] += 1
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return seen


def _wait(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("workers did not start")


def measure(mode: str, n: int, concurrency: int) -> tuple[float, float]:
    """(share of the busiest worker, requests/s) with two workers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    shared = None
    if mode == "shared":
        shared = socket.socket()
        shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        shared.bind(("127.0.0.1", port))
        shared.listen(1024)
    ctx = multiprocessing.get_context("fork")  # the inherited socket, as gunicorn forks
    procs = [ctx.Process(target=_serve, args=(port, shared)) for _ in range(2)]
    for p in procs:
        p.start()
    try:
        _wait(port)
        time.sleep(1.0)  # both workers up
        start = time.perf_counter()
        seen = asyncio.run(_load(port, n, concurrency))
        rate = n / (time.perf_counter() - start)
        return max(seen.values()) / n if len(seen) > 1 else 1.0, rate
    finally:
        for p in procs:
            p.terminate()
            p.join()
        if shared is not None:
            shared.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--concurrency", default="1,8,32")
    args = ap.parse_args()
    lines = ["# Two workers, one port: who accepts the connections", "",
             f"`.venv/bin/python -m benchmarks.accept_balance --requests {args.requests} --concurrency "
             f"{args.concurrency}` ({time.strftime('%Y-%m-%d')}, 2 cores shared with the load generator "
             "and other work: compare rows of one run). A new connection per request; 50% is an even "
             "spread.", "",
             "| sockets | concurrency | busiest worker's share | req/s |", "| --- | ---: | ---: | ---: |"]
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        for mode, name in (("reuseport", "one SO_REUSEPORT socket per worker (vitrine)"),
                           ("shared", "one inherited socket (gunicorn's model)")):
            share, rate = measure(mode, args.requests, concurrency)
            lines.append(f"| {name} | {concurrency} | {share:.0%} | {rate:,.0f} |")
            print(lines[-1], flush=True)
    OUT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
