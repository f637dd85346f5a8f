"""Latency benchmark: one server worker under open-loop, fixed-rate storefront traffic.

    .venv/bin/python -m loadtest.bench --items 100000

Trains a synthetic model (unless --store is given), starts Redis and one `vitrine serve`
worker pinned to core 0, and drives it from this process pinned to core 1 (Redis shares
core 1: the worker gets a core to itself). Then:
  1. a closed-loop probe (N concurrent requests) for the maximum rate;
  2. fixed-rate runs at 80% of it: requests are *scheduled* at fixed intervals and latency is
     measured from the scheduled time, so a stalled server can't hide its queue
     (no coordinated omission);
  3. the same fixed rate against /healthz, the bare aiohttp floor, as the in-run baseline.
Loopback only; every phase is bounded in time. Results go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from loadtest.http_client import Client, HttpError
from loadtest.traffic import Catalog, Traffic
from loadtest.worker_cpu import calm_and_behind, timeline, with_server_cpu
from models.artifact import describe_index

ROOT = Path(__file__).resolve().parents[1]
VITRINE = [sys.executable, "-m", "vitrine.cli"]


def percentiles(latencies_s: list[float]) -> dict[str, float]:
    a = np.asarray(latencies_s) * 1000
    if a.size == 0:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def schedule(rate: float, duration_s: float) -> np.ndarray:
    """Send times (seconds from start) of an open-loop run at a fixed rate."""
    return np.arange(int(rate * duration_s)) / rate


async def _one(client: Client, req, results, scheduled: float | None):
    method, path, body, name = req
    raw = client.request_bytes(method, path, body)
    start = time.perf_counter()
    try:
        status = await client.send(raw)
    except (HttpError, TimeoutError) as exc:
        status = type(exc).__name__
    end = time.perf_counter()
    results.append((name, status, end - (scheduled if scheduled is not None else start), scheduled))


@contextlib.contextmanager
def no_client_gc() -> Iterator[None]:
    """No garbage collection in the load generator while it measures: a full collection of its
    own objects paused it for 20-70 ms, and every request scheduled meanwhile was charged to
    the server. (Measured here with gc callbacks; the run's garbage is freed when it ends.)"""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


async def closed_loop(base: str, traffic: Traffic, concurrency: int, duration_s: float) -> dict:
    results: list = []
    deadline = time.perf_counter() + duration_s
    with no_client_gc():
        async with Client(base, limit=concurrency) as client:
            async def worker():
                while time.perf_counter() < deadline:
                    await _one(client, traffic.next(), results, None)
            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
    return _summary(results, elapsed)


async def open_loop(base: str, traffic: Traffic, rate: float, duration_s: float,
                    worker_pid: int | None = None) -> dict:
    """A fixed-rate run. With `worker_pid`, the worker's CPU is sampled throughout, and the
    result says what it cost while the run was calm and while it was behind."""
    results: list = []
    times = schedule(rate, duration_s)
    if worker_pid is None:
        return await _open_loop(base, traffic, times, results)
    async with timeline(worker_pid) as samples:
        result = await _open_loop(base, traffic, times, results)
    return {**result, "worker": calm_and_behind(samples, results)}


async def _open_loop(base: str, traffic: Traffic, times: np.ndarray, results: list) -> dict:
    with no_client_gc():
        async with Client(base, limit=512, timeout_s=5) as client:
            # Only the requests still in flight are awaited at the end: gathering all of a
            # run's tasks (tens of thousands, nearly all done) took the loop 40-80 ms, and the
            # last requests' answers waited behind it (the old reports' 33-100 ms maxima).
            in_flight: set[asyncio.Task] = set()
            t0 = time.perf_counter() + 0.05
            for offset in times:
                at = t0 + offset
                delay = at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(_one(client, traffic.next(), results, at))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.wait(in_flight)
            elapsed = time.perf_counter() - t0
    return {**_summary(results, elapsed), "over_10ms": slow_episodes(results)}


def slow_episodes(results: list, over_s: float = 0.010, gap_s: float = 0.050) -> dict:
    """Requests of an open-loop run slower than `over_s`, grouped into episodes by send time
    (slow requests less than `gap_s` apart). Tells a server that is slow throughout (many short
    episodes) from one that fell behind for a while (few long ones: a capacity dip, then a
    queue to drain)."""
    sent = np.sort([at for _, _, lat, at in results if lat > over_s])
    if sent.size == 0:
        return {"slow": 0, "episodes": 0, "longest_s": 0.0}
    cut = np.flatnonzero(np.diff(sent) >= gap_s) + 1
    starts, ends = np.r_[0, cut], np.r_[cut - 1, sent.size - 1]
    return {"slow": int(sent.size), "episodes": int(starts.size),
            "longest_s": float((sent[ends] - sent[starts]).max())}


def _summary(results: list, elapsed: float) -> dict:
    ok = [lat for _, status, lat, _ in results if status == 200]
    errors: dict[str, int] = {}
    for _, status, _, _ in results:
        if status != 200:
            errors[str(status)] = errors.get(str(status), 0) + 1
    by_name: dict[str, list[float]] = {}
    for name, status, lat, _ in results:
        if status == 200:
            by_name.setdefault(name, []).append(lat)
    return {"requests": len(results), "rate": len(results) / elapsed, "errors": errors,
            **percentiles(ok),
            "by_name": {k: {"n": len(v), **percentiles(v)} for k, v in sorted(by_name.items())}}


def _pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if os.path.exists("/usr/bin/taskset") else []


def _wait_ready(base: str, timeout_s: float = 60) -> None:
    import urllib.request

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not become ready")


@contextlib.contextmanager
def pinned_server(store: Path, port: int, work: Path, env: dict) -> Iterator[subprocess.Popen]:
    """Redis and one `vitrine serve` worker on core 0; Redis and this process (the load) on
    core 1, so the worker has a core to itself. Yields the worker once it is ready; stops
    both and removes `work` (Redis data, a model trained there) afterwards."""
    from server.store.embedded import EmbeddedRedis

    redis = EmbeddedRedis(work / "redis").start()
    subprocess.run(["taskset", "-cp", "1", str(redis.process.pid)], check=False, capture_output=True)
    server = subprocess.Popen(
        [*_pin(0), *VITRINE, "serve", "--workers", "1", "--port", str(port), "--store", str(store)],
        env={**env, "REDIS_URL": redis.url, "VITRINE_SERVER_LOG_LEVEL": "warning"})
    if _pin(1):
        os.sched_setaffinity(0, {1})
    try:
        _wait_ready(f"http://127.0.0.1:{port}")
        yield server
    finally:
        server.terminate()
        server.wait(10)
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--store", type=Path, help="serve this model store instead of training one")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--probe-seconds", type=float, default=10)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--fractions", default="0.8", help="fixed rates as fractions of the probed max")
    ap.add_argument("--rates", default="", help="also these fixed rates (req/s), e.g. 1000,1150")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "server_latency")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vitrine-bench-"))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    store = args.store
    if store is None:
        store = work / "models"
        subprocess.run([*VITRINE, "train", "--items", str(args.items), "--users", str(args.users),
                        "--n-events", str(args.events), "--no-eval", "--store", str(store)],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    with pinned_server(store, args.port, work, env) as server:
        catalog = Catalog.from_store(store)
        import uvloop

        uvloop.install()
        report = asyncio.run(_run(f"http://127.0.0.1:{args.port}", catalog, args, server.pid))
    _write(report, args, catalog)


async def _run(base: str, catalog: Catalog, args, pid: int) -> dict:
    await closed_loop(base, Traffic(catalog, seed=99), args.concurrency, 2)  # warm up
    probe = await with_server_cpu(
        closed_loop(base, Traffic(catalog, seed=1), args.concurrency, args.probe_seconds), pid)
    floor = await with_server_cpu(closed_loop(base, Traffic(None), args.concurrency, args.probe_seconds), pid)
    runs = []
    targets = [(float(f), probe["rate"] * float(f)) for f in args.fractions.split(",") if f]
    targets += [(float(r) / probe["rate"], float(r)) for r in args.rates.split(",") if r]
    # Slowest first: a saturated run's aftermath (Redis and the worker catching up) can't
    # spill into a slower one.
    for fraction, rate in sorted(targets, key=lambda t: t[1]):
        runs.append({"fraction": fraction, "target_rate": rate,
                     "storefront": await with_server_cpu(
                         open_loop(base, Traffic(catalog, seed=2), rate, args.seconds, pid), pid),
                     "healthz": await with_server_cpu(
                         open_loop(base, Traffic(None), rate, args.seconds, pid), pid)})
    return {"probe": probe, "healthz_probe": floor, "runs": runs}


def _cost(result: dict) -> str:
    return f"{result['server_cpu_us']:,.0f} | {result['server_busy']:.0%}"


def _calm_behind(w: dict) -> str:
    calm, behind = w["calm"], w["behind"]
    total = calm["seconds"] + behind["seconds"]
    if not behind["seconds"]:
        return f"0% | {calm['cpu_us']:,.0f} / - | {calm['busy']:.0%} / - | {calm['steal']:.1%} / -"
    return (f"{behind['seconds'] / total:.0%} | {calm['cpu_us']:,.0f} / {behind['cpu_us']:,.0f} | "
            f"{calm['busy']:.0%} / {behind['busy']:.0%} | {calm['steal']:.1%} / {behind['steal']:.1%}")


def _write(report: dict, args, catalog: Catalog) -> None:
    manifest = catalog.manifest
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    p, f = report["probe"], report["healthz_probe"]
    lines = [
        "# Server latency: one worker, storefront traffic",
        "",
        f"Command: `.venv/bin/python -m loadtest.bench {shlex.join(sys.argv[1:])}`  ",
        f"Machine: {os.cpu_count()} cores ({cpu}); "
        f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
        f"Model: {manifest['counts']['items']:,} items; index {describe_index(manifest['index'])}. "
        "Server pinned to core 0; Redis and the load generator share core 1.",
        "",
        "Traffic mix: 30% home recommendations, 20% product-page, 8% category, 5% similar items, "
        "4% trending, 33% event posts (view/cart/purchase); 40% of shoppers known users.",
        "",
        "## Maximum rate (closed loop, "
        f"{args.concurrency} concurrent, {args.probe_seconds:.0f} s)",
        "",
        "| traffic | req/s | p50 ms | p99 ms | worker CPU µs/request | worker busy | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        f"| storefront mix | {p['rate']:,.0f} | {p['p50']:.2f} | {p['p99']:.2f} | {_cost(p)} "
        f"| {p['errors'] or '-'} |",
        f"| /healthz (baseline) | {f['rate']:,.0f} | {f['p50']:.2f} | {f['p99']:.2f} | {_cost(f)} "
        f"| {f['errors'] or '-'} |",
        "",
        f"## Fixed rate (open loop, {args.seconds:.0f} s; latency from the scheduled send time)",
        "",
        "| traffic | target req/s | achieved | p50 ms | p95 ms | p99 ms | max ms | over 10 ms "
        "| worker CPU µs/request | worker busy | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for run in report["runs"]:
        for name in ("storefront", "healthz"):
            r = run[name]
            e = r["over_10ms"]
            slow = (f"{e['slow']:,} in {e['episodes']} episode{'s' * (e['episodes'] != 1)}, "
                    f"longest {e['longest_s']:.2f} s" if e["slow"] else "-")
            lines.append(f"| {name} @ {run['fraction']:.0%} | {run['target_rate']:,.0f} | {r['rate']:,.0f} | "
                         f"{r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | {r['max']:.1f} | {slow} | "
                         f"{_cost(r)} | {r['errors'] or '-'} |")
    lines += ["", "Calm and behind: each fixed-rate run's time in 0.1 s windows, \"behind\" where an "
              "answer came over 10 ms after its scheduled send. More CPU per answer there is the same "
              "work costing more (the machine slowing down, or the backlog itself); steal is the "
              "hypervisor running something else on the worker's core.", "",
              "| traffic | target req/s | time behind | worker CPU µs/answer, calm / behind "
              "| worker busy, calm / behind | steal, calm / behind |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for run in report["runs"]:
        for name in ("storefront", "healthz"):
            lines.append(f"| {name} @ {run['fraction']:.0%} | {run['target_rate']:,.0f} | "
                         f"{_calm_behind(run[name]['worker'])} |")
    lines += ["", "Per endpoint at the first fixed rate:", "",
              "| request | n | p50 ms | p95 ms | p99 ms |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, r in report["runs"][0]["storefront"]["by_name"].items():
        lines.append(f"| {name} | {r['n']:,} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
