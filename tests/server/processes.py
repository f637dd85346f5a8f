"""Helpers for tests that run `vitrine serve` as a real process: ports, HTTP, process trees."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from server.ops.lifeline import WORKER_NAME

VITRINE = [sys.executable, "-m", "vitrine.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(url: str, *, method: str = "GET", headers: dict | None = None, body: bytes | None = None,
         timeout: float = 10) -> tuple[int, dict, bytes]:
    """One request on its own connection: (status, headers, body)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def serve(port: int, store: Path, data_dir: Path, log: Path, *args: str, env: dict | None = None
          ) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen([*VITRINE, "serve", "--port", str(port), "--store", str(store),
                                 "--data-dir", str(data_dir), *args],
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                cwd=Path(__file__).resolve().parents[2])


def wait_ready(proc: subprocess.Popen, port: int, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if http(f"http://127.0.0.1:{port}/readyz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the server did not become ready\n" + log.read_text()[-3000:]
        time.sleep(0.1)


def children(pid: int) -> dict[int, str]:
    """Direct children of `pid`: {pid: command line}."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # The command name (field 2) may hold spaces: the fields after its ")" are fixed.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out[int(entry.name)] = cmdline
    return out


def workers(pid: int) -> set[int]:
    """The server's worker processes (they name themselves: server/ops/lifeline.py)."""
    out = set()
    for p in children(pid):
        try:
            if Path(f"/proc/{p}/comm").read_text().strip() == WORKER_NAME:
                out.add(p)
        except OSError:
            continue
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def crashing_worker(settings, parent_pid, metrics_dir, **_) -> None:
    """A worker that dies at once, as one with a bad deployment would (for the supervisor)."""
    raise SystemExit(7)
