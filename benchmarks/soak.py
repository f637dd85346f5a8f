"""The storefront mix at a fixed rate: p99 in windows alternated with the bare aiohttp handler at
the same rate (so a slow phase of the machine shows as such), then a soak at a lower rate with
the worker's memory sampled throughout.

    flock /tmp/vitrine-bench.lock .venv/bin/python benchmarks/soak.py --store STORE \
        [--windows 10] [--window-seconds 20] [--soak-minutes 10]

One `vitrine serve` worker and the bare handler (`loadtest/baselines.py bare`) on core 0, Redis
and this load generator (open loop: latency from each request's scheduled send time) on core 1.
The maximum is a closed-loop probe of the same mix (loadtest/bench.py's traffic: pages, events,
similar items, trending). Windows: the storefront at `--window-fraction` of that maximum, then
the bare handler at the same rate, in turn. A window counts where the bare handler's p99 is at
most `--calm-p99-ms` (the machine was calm); it meets the target where the storefront's p99 is
at most `--target-p99-ms`. The soak runs at `--soak-fraction` in 30 s segments: requests,
errors, p99 and the worker's resident memory after each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ratios import started  # noqa: E402
from loadtest.bench import closed_loop, open_loop, pinned_server  # noqa: E402
from loadtest.traffic import Catalog, Traffic  # noqa: E402

BARE_PORT = 18095


class _Bare:
    """loadtest/baselines.py's bare handler as a Traffic: one GET /rec per request."""

    def next(self):
        return ("GET", "/rec", None, "bare")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _errors(r: dict) -> int:
    return sum(r["errors"].values())


async def run(args, catalog: Catalog, pid: int, base: str, bare: str) -> tuple[float, list, list]:
    await closed_loop(base, Traffic(catalog, seed=99), args.concurrency, 3)  # warm up
    probe = await closed_loop(base, Traffic(catalog, seed=1), args.concurrency, args.probe_seconds)
    peak = probe["rate"]
    rate = args.window_fraction * peak
    print(f"closed-loop maximum {peak:,.0f} req/s; windows at {rate:,.0f} req/s", flush=True)
    windows = []
    for w in range(args.windows):
        shop = await open_loop(base, Traffic(catalog, seed=10 + w), rate, args.window_seconds)
        yard = await open_loop(bare, _Bare(), rate, args.window_seconds)
        windows.append((shop, yard))
        print(f"window {w + 1}: storefront p99 {shop['p99']:.2f} ms ({_errors(shop)} errors), "
              f"bare p99 {yard['p99']:.2f} ms", flush=True)
    soak_rate = args.soak_fraction * peak
    segments = []
    start_rss = rss_mb(pid)
    for s in range(int(args.soak_minutes * 2)):
        r = await open_loop(base, Traffic(catalog, seed=100 + s), soak_rate, 30)
        segments.append((r, rss_mb(pid)))
        print(f"soak {(s + 1) / 2:.1f} min: {r['requests']:,} requests, {_errors(r)} errors, "
              f"p99 {r['p99']:.2f} ms, RSS {segments[-1][1]:,.0f} MB", flush=True)
    return peak, windows, [(start_rss, soak_rate), *segments]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--port", type=int, default=18094)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--probe-seconds", type=float, default=10)
    ap.add_argument("--windows", type=int, default=10)
    ap.add_argument("--window-seconds", type=float, default=20)
    ap.add_argument("--window-fraction", type=float, default=0.8)
    ap.add_argument("--calm-p99-ms", type=float, default=2.0)
    ap.add_argument("--target-p99-ms", type=float, default=10.0)
    ap.add_argument("--soak-fraction", type=float, default=0.7)
    ap.add_argument("--soak-minutes", type=float, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "soak.md")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vitrine-soak-"))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    catalog = Catalog.from_store(args.store)
    with (pinned_server(args.store, args.port, work, env) as server,
          started([sys.executable, "-m", "loadtest.baselines", "bare", "--port", str(BARE_PORT)], env,
                  f"http://127.0.0.1:{BARE_PORT}", "/rec")):
        import uvloop

        uvloop.install()
        peak, windows, soak = asyncio.run(run(args, catalog, server.pid, f"http://127.0.0.1:{args.port}",
                                              f"http://127.0.0.1:{BARE_PORT}"))
    _write(args, catalog, peak, windows, soak)


def _write(args, catalog: Catalog, peak: float, windows: list, soak: list) -> None:
    counted = [(s, y) for s, y in windows if y["p99"] <= args.calm_p99_ms]
    met = [s for s, _ in counted if s["p99"] <= args.target_p99_ms]
    n_items = catalog.manifest.get("counts", {}).get("items", 0)
    (start_rss, soak_rate), segments = soak[0], soak[1:]
    text = [
        "# Fixed-rate p99 against the bare handler, and a soak",
        "",
        f"Command: `flock /tmp/vitrine-bench.lock .venv/bin/python benchmarks/soak.py --store STORE "
        f"--windows {args.windows} --window-seconds {args.window_seconds:g} --soak-minutes "
        f"{args.soak_minutes:g}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, 2 cores). "
        f"Model: {n_items:,} items. One worker and the bare handler on core 0, Redis and the "
        f"open-loop load on core 1; the storefront mix of loadtest/traffic.py.",
        "",
        f"Closed-loop maximum: {peak:,.0f} req/s. Windows at {args.window_fraction:.0%} of it "
        f"({args.window_fraction * peak:,.0f} req/s), {args.window_seconds:g} s each, storefront "
        "then bare handler:",
        "",
        "| window | storefront p50 ms | storefront p99 ms | errors | bare p99 ms | calm (bare ≤ "
        f"{args.calm_p99_ms:g} ms) | storefront p99 ≤ {args.target_p99_ms:g} ms |",
        "| ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for w, (s, y) in enumerate(windows, 1):
        calm = y["p99"] <= args.calm_p99_ms
        text.append(f"| {w} | {s['p50']:.2f} | {s['p99']:.2f} | {_errors(s)} | "
                    f"{y['p99']:.2f} | {'yes' if calm else 'no'} | "
                    f"{'yes' if s['p99'] <= args.target_p99_ms else 'no'} |")
    text += ["", f"**{len(met)} of {len(counted)} calm windows** met p99 ≤ {args.target_p99_ms:g} ms "
             f"({len(windows)} windows in all).", "",
             f"Soak at {args.soak_fraction:.0%} of the maximum ({soak_rate:,.0f} req/s), 30 s segments; "
             f"worker RSS {start_rss:,.0f} MB before:", "",
             "| minute | requests | errors | p99 ms | worker RSS MB |",
             "| ---: | ---: | ---: | ---: | ---: |"]
    for i, (r, rss) in enumerate(segments, 1):
        text.append(f"| {i / 2:.1f} | {r['requests']:,} | {_errors(r)} | {r['p99']:.2f} | {rss:,.0f} |")
    errors = sum(_errors(r) for r, _ in segments)
    half = segments[len(segments) // 2:]
    growth = half[-1][1] - half[0][1] if half else float("nan")
    text += ["", f"Soak: {sum(r['requests'] for r, _ in segments):,} requests, {errors} errors; RSS over "
             f"its second half {half[0][1]:,.0f} → {half[-1][1]:,.0f} MB ({growth:+,.0f} MB)."]
    args.out.write_text("\n".join(text) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
