"""Personalized home recommendations against three yardsticks, in interleaved rounds of one run:
the 30-line `../shared/baselines/lean_server.py`, implicit's own `recommend()` in a plain
aiohttp handler (`loadtest/baselines.py implicit`) and a bare aiohttp handler (the HTTP floor).

    flock /tmp/vitrine-bench.lock .venv/bin/python benchmarks/ratios.py --store STORE \
        [--rounds 3] [--seconds 10] [--sessions 20000]

Every server runs on core 0, one at a time under load; wrk (one thread, 8 connections) and the
Redis instances run on core 1. The same shoppers ask all of them: anonymous sessions of 5
product views of catalog items (the head weighted as real traffic is), 20 items each. Vitrine
reads each session from its own Redis (the events were posted through `/v1/events`),
lean_server from its Redis (`s:{session}` as it expects), the implicit baseline from memory.
There are more sessions than Vitrine's fold-in reuse window sees in a second, so each request
folds its session in, as the yardsticks do.

Each round measures every server in a rotated order; req/s, p50/p99 (wrk) and the server's CPU
per request (/proc) are reported per round with Vitrine's ratios against each yardstick in that
round, so a slow phase of the machine hits all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadtest.bench import _pin, pinned_server  # noqa: E402
from loadtest.http_client import Client  # noqa: E402
from loadtest.worker_cpu import cpu_seconds  # noqa: E402

LUA = """
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local i = math.random(#paths)
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""
PORTS = {"vitrine": 18090, "implicit": 18091, "bare": 18092, "lean": 18093}
LEAN_REDIS_PORT = 6399  # lean_server.py's


def shoppers(store: Path, n: int, items_each: int, seed: int = 1) -> tuple[list[list[str]], list, object]:
    """`n` sessions of `items_each` distinct items drawn by popularity (newest first), as ids
    and the artifact (for the ids' rows)."""
    from models.artifact import load_current

    art = load_current(store)
    pop = np.asarray(art.popularity, dtype=np.float64)
    p = (pop + 1.0) / (pop + 1.0).sum()
    rng = np.random.default_rng(seed)
    draws = rng.choice(len(p), size=(n, 4 * items_each), p=p)  # one pass over p for all sessions
    rows = [list(dict.fromkeys(d.tolist()))[:items_each] for d in draws]
    return [[art.items.ids[r] for r in row] for row in rows], rows, art


async def post_sessions(base: str, sessions: list[list[str]]) -> None:
    now = int(time.time() * 1000)
    async with Client(base, limit=16) as client:
        async def post(s: int, items: list[str]) -> None:
            events = [{"event_id": f"r{s}-{j}", "session_id": f"s{s}", "type": "view", "item_id": item,
                       "ts": now - 1000 * (j + 1)} for j, item in enumerate(items)]
            raw = client.request_bytes("POST", "/v1/events", {"events": events})
            status = await client.send(raw)
            if status != 200:
                raise RuntimeError(f"posting session s{s}: HTTP {status}")
        for start in range(0, len(sessions), 256):
            end = min(start + 256, len(sessions))
            await asyncio.gather(*(post(s, sessions[s]) for s in range(start, end)))


@contextlib.contextmanager
def started(cmd: list[str], env: dict, base: str, ready_path: str) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([*_pin(0), *cmd], env=env)
    try:
        deadline = time.time() + 300
        import urllib.error
        import urllib.request

        while True:
            try:
                with urllib.request.urlopen(base + ready_path, timeout=5):
                    break
            except urllib.error.HTTPError as exc:
                raise RuntimeError(f"{cmd[1:3]} answers {base + ready_path} with HTTP {exc.code}") from None
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"{cmd[1:3]} did not start") from None
                time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


def wrk(url: str, paths_file: Path, seconds: float, connections: int, work: Path) -> dict:
    script = work / "rotate.lua"
    script.write_text(LUA)
    out = subprocess.run([*_pin(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency",
                          "-s", str(script), url], env={**os.environ, "WRK_PATHS": str(paths_file)},
                         capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    lat = {q: _ms(v) for q, v in re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M)}
    return {"requests": total, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": lat.get("50"), "p99_ms": lat.get("99"), "errors": errors}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def measure(name: str, pid: int, paths_file: Path, args, work: Path) -> dict:
    before = cpu_seconds(pid)
    r = wrk(f"http://127.0.0.1:{PORTS[name]}", paths_file, args.seconds, args.connections, work)
    r["cpu_us"] = (cpu_seconds(pid) - before) / max(r["requests"], 1) * 1e6
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--lean", type=Path, default=ROOT.parent / "shared" / "baselines" / "lean_server.py")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--sessions", type=int, default=20_000)
    ap.add_argument("--session-items", type=int, default=5)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ratios.md")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="vitrine-ratios-"))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "VITRINE_SERVER_LOG_LEVEL": "warning"}
    sessions, rows, art = shoppers(args.store, args.sessions, args.session_items)
    n_items, index_kind = len(art.items.ids), art.manifest.get("index", {}).get("kind", "?")

    # lean_server's inputs: the same factors and the same FAISS index, its sessions in its Redis.
    lean_dir = work / "lean"
    lean_dir.mkdir()
    np.save(lean_dir / f"Y{n_items}.npy", np.ascontiguousarray(art.item_factors, dtype=np.float32))
    os.symlink(art.path / "index.faiss", lean_dir / f"vitrine{n_items}.faiss")
    del art
    (work / "sessions.json").write_bytes(orjson.dumps({f"s{s}": items for s, items in enumerate(sessions)}))
    n = range(len(sessions))
    paths = {
        "vitrine": [f"/v1/recommendations?placement=home&session_id=s{s}&k={args.k}" for s in n],
        "lean": [f"/rec?session=s{s}" for s in n],
        "implicit": [f"/rec?session_id=s{s}&k={args.k}" for s in n],
        "bare": ["/rec"],
    }
    files = {}
    for name, lines in paths.items():
        files[name] = work / f"{name}.paths"
        random.Random(0).shuffle(lines)
        files[name].write_text("\n".join(lines) + "\n")

    from server.store.embedded import redis_server_binary

    lean_redis = subprocess.Popen([*_pin(1), redis_server_binary(), "--port", str(LEAN_REDIS_PORT),
                                   "--save", "", "--appendonly", "no", "--dir", str(work)],
                                  stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    import redis

    with redis.Redis(port=LEAN_REDIS_PORT) as r, r.pipeline(transaction=False) as pipe:
        for s, row in enumerate(rows):
            pipe.set(f"s:{{s{s}}}", msgpack.packb({"i": [int(x) for x in row], "b": []}))
        pipe.execute()

    py = [sys.executable]
    try:
        with (pinned_server(args.store, PORTS["vitrine"], work / "vitrine", env) as vitrine,
              started([*py, str(args.lean), str(n_items), "vitrine", str(PORTS["lean"])],
                      {**env, "PROTO_DIR": str(lean_dir)}, f"http://127.0.0.1:{PORTS['lean']}",
                      "/rec") as lean,
              started([*py, "-m", "loadtest.baselines", "implicit", "--store", str(args.store), "--sessions",
                       str(work / "sessions.json"), "--port", str(PORTS["implicit"])], env,
                      f"http://127.0.0.1:{PORTS['implicit']}", "/rec?session_id=s0") as implicit,
              started([*py, "-m", "loadtest.baselines", "bare", "--port", str(PORTS["bare"])], env,
                      f"http://127.0.0.1:{PORTS['bare']}", "/rec") as bare):
            asyncio.run(post_sessions(f"http://127.0.0.1:{PORTS['vitrine']}", sessions))
            pids = {"vitrine": vitrine.pid, "lean": lean.pid, "implicit": implicit.pid, "bare": bare.pid}
            order = ["vitrine", "lean", "implicit", "bare"]
            for name in order:  # warm-up: caches, page faults of the memory-mapped files
                wrk(f"http://127.0.0.1:{PORTS[name]}", files[name], 3, args.connections, work)
            rounds = []
            for rnd in range(args.rounds):
                turn = order[rnd % len(order):] + order[:rnd % len(order)]
                result = {name: measure(name, pids[name], files[name], args, work) for name in turn}
                rounds.append(result)
                print(_round_rows(rnd + 1, result), flush=True)
    finally:
        lean_redis.terminate()
        lean_redis.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    _write(args, rounds, n_items, index_kind)


def _round_rows(rnd: int, result: dict) -> str:
    lines = []
    v = result["vitrine"]
    for name in ("vitrine", "lean", "implicit", "bare"):
        r = result[name]
        ratio = "" if name == "vitrine" else f"{v['rps'] / r['rps']:.2f}× / {r['cpu_us'] / v['cpu_us']:.2f}×"
        lines.append(f"| {rnd} | {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                     f"{r['cpu_us']:,.0f} | {r['errors']} | {ratio} |")
    return "\n".join(lines)


def _write(args, rounds: list[dict], n_items: int, index_kind: str) -> None:
    cmd = "flock /tmp/vitrine-bench.lock .venv/bin/python benchmarks/ratios.py --store STORE"
    extra = f" --rounds {args.rounds} --seconds {args.seconds:g} --sessions {args.sessions}"
    text = [
        "# Personalized home against lean_server, implicit and the HTTP floor",
        "",
        f"Command: `{cmd}{extra}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"2 cores). Model: {n_items:,} items, index {index_kind}. Each server on core 0, wrk "
        f"(1 thread, {args.connections} connections) and Redis on core 1; {args.sessions:,} anonymous "
        f"sessions of {args.session_items} views, {args.k} items per answer.",
        "",
        "Ratios: Vitrine's req/s over the yardstick's, and the yardstick's server CPU per request "
        "over Vitrine's (both > 1 when Vitrine is faster), in the same round.",
        "",
        "| round | server | req/s | p50 ms | p99 ms | server CPU µs/request | errors "
        "| Vitrine's ratio (req/s / CPU) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    text += [_round_rows(i + 1, r) for i, r in enumerate(rounds)]
    args.out.write_text("\n".join(text) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
