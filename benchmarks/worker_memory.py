"""Memory per server worker: `vitrine serve --workers 1` and `--workers 2` on one model store,
each warmed by storefront traffic, then every process's RSS, PSS and private (USS) memory read
from /proc/<pid>/smaps_rollup.

    vitrine train --items 1000000 --users 500000 --n-events 6000000 --no-eval --store /tmp/m1m
    .venv/bin/python benchmarks/worker_memory.py --store /tmp/m1m

PSS charges each shared page to the processes sharing it in equal parts, so the sum of the
processes' PSS is the physical memory the server uses; what a second worker adds is the
difference of those sums between the two runs (the memory-mapped factors, neighbours and
index files are shared through the page cache). The embedded Redis is started by the server in
both runs and left out of the sums.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadtest.bench import _wait_ready  # noqa: E402
from loadtest.http_client import Client  # noqa: E402
from loadtest.traffic import Catalog, Traffic  # noqa: E402
from server.ops.lifeline import WORKER_NAME  # noqa: E402

FIELDS = ("Rss", "Pss", "Private_Clean", "Private_Dirty")


def smaps(pid: int) -> dict[str, int]:
    """kB per field of /proc/<pid>/smaps_rollup."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        if name in FIELDS:
            out[name] = int(value.split()[0])
    return out


def tree(pid: int) -> list[tuple[int, str]]:
    """`pid` and its descendants, with their command lines."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except FileNotFoundError:
            continue
        out.append((p, cmd))
        todo += [int(c) for c in children]
    return out


async def warm(port: int, store: Path, requests: int) -> None:
    """Storefront traffic, 16 requests at a time over keep-alive connections (the kernel spreads
    connections over the workers' sockets, so each worker gets some)."""
    traffic = Traffic(Catalog.from_store(store), seed=1)
    async with Client(f"http://127.0.0.1:{port}", limit=16) as client:
        async def one() -> None:
            method, path, body, _ = traffic.next()
            await client.send(client.request_bytes(method, path, body))
        for _ in range(0, requests, 16):
            await asyncio.gather(*(one() for _ in range(16)))


def measure(store: Path, workers: int, port: int, requests: int) -> list[dict]:
    data = Path(tempfile.mkdtemp(prefix="vitrine-mem-"))
    cmd = [sys.executable, "-m", "vitrine.cli", "serve", "--store", str(store), "--port", str(port),
           "--data-dir", str(data), "--workers", str(workers)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", timeout_s=300)
        asyncio.run(warm(port, store, requests))
        time.sleep(1)
        rows = []
        for pid, cmdline in tree(server.pid):
            if "redis-server" in cmdline:
                continue
            role = ("supervisor" if pid == server.pid and workers > 1 else "worker" if pid == server.pid or
                    Path(f"/proc/{pid}/comm").read_text().strip() == WORKER_NAME else cmdline[:40])
            rows.append({"pid": pid, "role": role, **smaps(pid)})
        return rows
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--port", type=int, default=18095)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "worker_memory.md")
    args = ap.parse_args()
    runs = {n: measure(args.store, n, args.port, args.requests) for n in (1, 2)}
    mb = 1024
    lines = ["# Memory per server worker", "",
             f"Command: `{shlex.join(['.venv/bin/python', 'benchmarks/worker_memory.py', *sys.argv[1:]])}` "
             f"({time.strftime('%Y-%m-%d')}); {args.requests:,} storefront requests before reading "
             "/proc/<pid>/smaps_rollup. MB = 1,024 kB; the embedded Redis left out.", ""]
    from models import artifact
    m = artifact.load_current(args.store).manifest
    lines += [f"Model: {m['counts']['items']:,} items, {m['counts']['users']:,} users, index "
              f"{m['index']['kind']}.", "",
              "| run | process | RSS MB | PSS MB | private MB |", "| --- | --- | ---: | ---: | ---: |"]
    totals = {}
    for n, rows in runs.items():
        for r in rows:
            private = r["Private_Clean"] + r["Private_Dirty"]
            lines.append(f"| {n} worker(s) | {r['role']} {r['pid']} | {r['Rss'] / mb:,.0f} | "
                         f"{r['Pss'] / mb:,.0f} | {private / mb:,.0f} |")
        totals[n] = sum(r["Pss"] for r in rows) / mb
    lines += ["", f"Sum of PSS: {totals[1]:,.0f} MB with one worker, {totals[2]:,.0f} MB with two "
              f"(a supervisor and two workers): the second worker and the supervisor add "
              f"**{totals[2] - totals[1]:,.0f} MB**."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
