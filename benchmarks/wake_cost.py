"""What one blocking round trip to another process costs the caller's CPU on this machine: a
request/reply ping-pong over a Unix socket pair (a 200-byte request, a 5-byte reply, as a
Redis command and its `+OK`), the peer on the other core or on the same one.

    .venv/bin/python benchmarks/wake_cost.py [--rounds 4] [--n 20000]

The caller is pinned to core 0. Its CPU per round trip (process_time), the part of it spent in
send() (thread_time around the call), and the wall time are reported. The difference between
the two placements is what sleeping until the reply and being woken costs the caller here: a
server worker pays it for every wait on Redis that leaves its event loop with nothing else to
do, which is what batching several requests' commands into one round trip saves.
Rounds alternate the placements, so a slow phase of the machine hits both.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time
from pathlib import Path


def round_trips(peer_core: int, n: int) -> tuple[float, float, float]:
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the peer: answers each request
        a.close()
        os.sched_setaffinity(0, {peer_core})
        while b.recv(4096):
            b.send(b"+OK\r\n")
        os._exit(0)
    b.close()
    msg = b"x" * 200
    try:
        for _ in range(1000):
            a.send(msg)
            a.recv(64)
        in_send = 0.0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            t = time.thread_time()
            a.send(msg)
            in_send += time.thread_time() - t
            a.recv(64)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        a.close()
        os.waitpid(pid, 0)
    return cpu / n * 1e6, in_send / n * 1e6, wall / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "wake_cost.md")
    args = ap.parse_args()
    os.sched_setaffinity(0, {0})
    runs: dict[str, list[tuple[float, float, float]]] = {"other core": [], "same core": []}
    for _ in range(args.rounds):
        runs["other core"].append(round_trips(1, args.n))
        runs["same core"].append(round_trips(0, args.n))
    lines = ["# One blocking round trip: the caller's CPU", "",
             f"Command: `.venv/bin/python benchmarks/wake_cost.py --rounds {args.rounds} --n {args.n}` "
             f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores shared with "
             "other work). Medians of the rounds.", "",
             "| peer | caller CPU µs per round trip | of which send() µs | wall µs |",
             "| --- | ---: | ---: | ---: |"]
    for name, rows in runs.items():
        cpu, send, wall = (statistics.median(r[i] for r in rows) for i in range(3))
        lines.append(f"| {name} | {cpu:.1f} | {send:.1f} | {wall:.1f} |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
