"""Real Redis servers for the store contract suite, all from the same redis-server binary as the
embedded one: a TCP server with a password, and a 3-master Redis Cluster."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from server.store.embedded import redis_server_binary


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, cluster_bus: bool = False) -> int:
    """A free port; for a cluster node also below 55,536 with its bus port (+10,000) free."""
    if not cluster_bus:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    rng = random.Random()
    while True:
        port = rng.randrange(20_000, 55_000)
        if _free(port) and _free(port + 10_000):
            return port


def _start(directory: Path, port: int, *extra: str) -> subprocess.Popen:
    directory.mkdir(parents=True, exist_ok=True)
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--appendonly", "yes", "--save", "", "--daemonize", "no",
            "--logfile", str(directory / "redis.log"), *extra]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)


def _wait(check, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout} s")
        time.sleep(0.05)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class TcpRedis:
    """redis-server on a TCP port, requiring a password."""
    directory: Path
    password: str = "s3cret-pa55"
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> TcpRedis:
        self.port = free_port()
        self.proc = _start(self.directory, self.port, "--requirepass", self.password)
        _wait(lambda: redis.Redis.from_url(self.url).ping(), "redis-server with a password")
        return self

    def flush(self) -> None:
        with redis.Redis.from_url(self.url) as client:
            client.flushall()

    def stop(self) -> None:
        _stop([self.proc] if self.proc else [])


@dataclass
class LocalCluster:
    """Three masters, no replicas, the 16,384 slots split evenly: a real Redis Cluster."""
    directory: Path
    ports: tuple[int, ...] = ()
    procs: tuple[subprocess.Popen, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> LocalCluster:
        self.ports = tuple(free_port(cluster_bus=True) for _ in range(3))
        self.procs = tuple(_start(self.directory / str(p), p, "--cluster-enabled", "yes",
                                  "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
                           for p in self.ports)
        for p in self.ports:
            _wait(lambda p=p: redis.Redis(port=p).ping(), f"cluster node {p}")
        # What `redis-cli --cluster create` does: slots to each master, then MEET.
        third = 16_384 // 3
        ranges = [(0, third - 1), (third, 2 * third - 1), (2 * third, 16_383)]
        for p, (lo, hi) in zip(self.ports, ranges, strict=True):
            with redis.Redis(port=p) as node:
                node.execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi) if _has_addslotsrange(node) \
                    else node.execute_command("CLUSTER", "ADDSLOTS", *range(lo, hi + 1))
        with redis.Redis(port=self.ports[0]) as first:
            for p in self.ports[1:]:
                first.execute_command("CLUSTER", "MEET", "127.0.0.1", p)
        _wait(self._ready, "the Redis Cluster", timeout=30)
        return self

    def _ready(self) -> bool:
        for p in self.ports:
            with redis.Redis(port=p) as node:
                info = node.execute_command("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in info or "cluster_known_nodes:3" not in info:
                    return False
        with RedisCluster(host="127.0.0.1", port=self.ports[0]) as client:
            client.set("{probe}", 1)  # every node agrees on the map and accepts writes
        return True

    def flush(self) -> None:
        for p in self.ports:
            with redis.Redis(port=p) as node:
                node.flushall()

    def stop(self) -> None:
        _stop(list(self.procs))


def _has_addslotsrange(node: redis.Redis) -> bool:
    version = node.info("server")["redis_version"]
    return tuple(int(x) for x in version.split(".")[:2]) >= (7, 0)

