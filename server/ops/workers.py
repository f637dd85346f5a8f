"""Running the server: one process, or a supervisor and N worker processes on one port.

- The port is claimed first (server/ops/port.py): a second server on a used port stops with a
  clear message and a non-zero exit instead of silently sharing it.
- One process (`server.workers = 1`) serves directly; restarting it is the job of what started
  it (systemd, Docker's restart policy, Kubernetes).
- With N workers the parent starts the embedded Redis once, supervised (or attaches to the one
  already answering in the data directory: never two on one append-only file), then supervises: a
  worker that dies is logged and restarted, at once the first time, then backing off (0.5 s
  doubling to 30 s) while it keeps dying within 10 s of its start. Workers die with the parent
  (PR_SET_PDEATHSIG), as does the embedded Redis: a `kill -9` of the server leaves no process
  behind.
- Each worker slot has its own listening socket in the port's SO_REUSEPORT group, opened by the
  parent and kept across the slot's workers (server/ops/port.py's `listening_sockets`): the
  kernel spreads new connections over the slots, and those queued on a slot whose worker is
  being replaced (or restarted at once) wait for the next one, where a worker closing its own
  socket would reset them. A slot whose worker backs off closes its socket meanwhile, so the
  other workers take its share.
- The parent loads the served model once and forks the workers (server/ops/models.py's
  `preload`): they share its pages copy-on-write, so a second worker at 1M items adds a fraction
  of the memory it would load alone (benchmarks/results/worker_memory.md), and a restarted
  worker is serving again without loading it. The parent forks before it has an event loop or
  open connections; its one thread (the embedded Redis's supervisor) holds no lock a worker
  uses.
- When CURRENT names a new version, the parent loads it once too and replaces the workers one
  at a time: a new worker is forked, and the one it replaces is stopped gracefully (its
  requests in flight finish) once the new one says it serves, so the others answer meanwhile
  and the memory is shared again. The workers also follow CURRENT on their own, as a lone
  server does: a version the parent cannot load is refused (or served) by them as before.
- Metrics: the workers write prometheus_client's multiprocess files in one directory per run,
  so any worker's `/metrics` answers for the whole server (server/ops/metrics.py).

Gunicorn (with aiohttp's worker) supervises too, but it halts the whole server when a worker
fails to boot instead of backing off, and would be a second configuration system beside
server/settings.py; and its workers accept on one shared socket, which spreads connections
unevenly: with two workers the busiest took 62-68% of new connections over two runs, against
50-51% with SO_REUSEPORT (throughput showed no consistent difference on this noisy VM;
benchmarks/results/accept_balance.md).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from server.ops.lifeline import WORKER_NAME, die_with_parent, name_process
from server.ops.logs import configure_logging
from server.ops.port import PortInUse, claim_port, listening_sockets
from server.settings import Settings

log = logging.getLogger("vitrine.workers")
EXIT_CANNOT_LISTEN = 3  # a worker that can't bind its port: restarting it won't help
STABLE_S = 10.0  # a worker that lived this long before dying is not crash-looping
READY_TIMEOUT_S = 120.0  # a replacement not serving by then is given up; the worker it replaces stays
MAX_BACKOFF_S = 30.0
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own switch, read at its import
METRICS_DIR_PREFIX = "vitrine-metrics-"  # + the supervisor's pid


def _run_app(settings: Settings, *, reuse_port: bool, metrics_dir: Path | None = None,
             ready: Connection | None = None, sockets: list[socket.socket] | None = None) -> None:
    from aiohttp import web

    from server.app import create_app
    from server.ops.drain import serve_until_stopped

    if sys.platform != "win32":
        import uvloop

        uvloop.install()
    app = create_app(settings, metrics_dir=metrics_dir)
    if ready is not None:
        async def say_ready(_app: web.Application) -> None:
            # After every start-up context (Redis, catalog, rules, model): it serves as soon as
            # it listens, which follows at once.
            ready.send_bytes(b"ready")
            ready.close()
        app.on_startup.append(say_ready)
    try:
        asyncio.run(serve_until_stopped(app, sockets=sockets, host=settings.server.host,
                                        port=settings.server.port, reuse_port=reuse_port))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            log.error("cannot listen on %s:%s: %s", settings.server.host, settings.server.port, exc.strerror)
            sys.exit(EXIT_CANNOT_LISTEN)
        raise


def _worker(settings: Settings, parent_pid: int, metrics_dir: Path, ready: Connection | None = None,
            sockets: list[socket.socket] | None = None, others: list[socket.socket] = ()) -> None:
    """A worker process's entry point (forked from the supervisor); `ready`: where to say it
    serves (a replacement: the supervisor then stops the worker it replaces); `sockets`: its
    slot's listening sockets (else it opens its own); `others`: the other slots' sockets, which
    it inherited by the fork and closes (held open here, a slot's socket would outlive its
    backing off worker and keep receiving connections nobody accepts)."""
    for sock in others:
        sock.close()
    # Forked, it starts with the supervisor's handlers, which stop *its* workers: until the
    # server installs its own, SIGTERM ends this worker alone.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    die_with_parent(parent_pid)
    name_process(WORKER_NAME)
    configure_logging(settings.server)
    _run_app(settings, reuse_port=True, metrics_dir=metrics_dir, ready=ready, sockets=sockets)


def serve(settings: Settings) -> int:
    host, port, n = settings.server.host, settings.server.port, settings.server.workers
    configure_logging(settings.server)
    try:
        lock = claim_port(host, port)
    except PortInUse as exc:
        print(f"vitrine: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        redis = settings.redis.url or f"embedded in {settings.data.dir}"
        print(f"vitrine: serving on http://{host}:{port} with {n} worker{'s' * (n > 1)} "
              f"(model store {settings.model.store}, Redis {redis})", flush=True)
        if n == 1:
            _run_app(settings, reuse_port=False)
            return 0
        return _serve_workers(settings)
    finally:
        if lock is not None:
            lock.close()


def _serve_workers(settings: Settings) -> int:
    from server.store.embedded import supervised_redis

    _remove_stale_metrics_dirs()
    metrics_dir = Path(tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-"))
    os.environ[MULTIPROC_ENV] = str(metrics_dir)  # inherited by the spawned workers
    try:
        # The embedded Redis, restarted by its own supervisor thread if it dies (the workers see
        # it unreachable meanwhile), or the one already answering in the data directory.
        with supervised_redis(settings.redis.url, settings.data.dir) as (url, _):
            return Supervisor(settings.replace(**{"redis.url": url}), metrics_dir,
                              preload=settings.model.store).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _remove_stale_metrics_dirs() -> None:
    """A server killed with -9 could not remove its run's metrics directory: the next one does."""
    for path in Path(tempfile.gettempdir()).glob(f"{METRICS_DIR_PREFIX}*"):
        pid = path.name.removeprefix(METRICS_DIR_PREFIX).split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and sys.platform.startswith("linux"):
            shutil.rmtree(path, ignore_errors=True)


@dataclass
class _Slot:
    index: int
    process: BaseProcess | None = None
    started: float = 0.0
    quick_deaths: int = 0  # consecutive deaths within STABLE_S of the start
    due: float = 0.0  # when to start it (monotonic)
    sockets: list[socket.socket] | None = None  # its listening sockets (forked workers), kept across them


@dataclass
class _Replacement:
    """A worker forked with a new model, not serving yet, and the slot whose worker it replaces."""
    slot: _Slot
    process: BaseProcess
    ready: Connection
    started: float


class Supervisor:
    """Keeps `settings.server.workers` workers running until SIGTERM or SIGINT."""

    def __init__(self, settings: Settings, metrics_dir: Path, target=None, *, preload: Path | None = None):
        """`target(settings, parent_pid, metrics_dir)`: a worker's entry point (an importable
        function); `preload`: the model store whose served version the workers are forked with
        (without it they are spawned: fresh interpreters that load everything themselves)."""
        self.settings, self.metrics_dir = settings, metrics_dir
        self.target = target or _worker
        self.slots = [_Slot(i) for i in range(settings.server.workers)]
        self.preload = preload
        self.context = multiprocessing.get_context("fork" if preload is not None else "spawn")
        self.stopping = False
        self.exit_code = 0
        self._checked = 0.0  # when the preloaded model was last compared with CURRENT
        self._refused: str | None = None  # a version the supervisor could not load (tried once)
        self._roll: list[_Slot] = []  # slots whose worker still serves the previous version
        self._replacing: _Replacement | None = None
        # Stopped workers not yet gone (replaced ones finishing their requests), with what to log then.
        self._retired: list[tuple[BaseProcess, str]] = []

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if self.preload is not None:
                # The model's imports, only in a supervisor that preloads.
                from server.ops.models import preload

                if (version := preload(self.preload)) is not None:
                    log.info("model %s loaded once for %d workers", version, len(self.slots))
                host, port = self.settings.server.host, self.settings.server.port
                try:
                    for slot in self.slots:
                        slot.sockets = listening_sockets(host, port)
                except OSError as exc:
                    log.error("cannot listen on %s:%s: %s", host, port, exc.strerror or exc)
                    return 1
            while not self.stopping:
                now = time.monotonic()
                if self.preload is not None and now - self._checked >= self.settings.model.reload_interval_s:
                    self._follow()
                    self._checked = now = time.monotonic()
                self._replace_step(now)
                for slot in self.slots:
                    if slot.process is None and now >= slot.due:
                        self._start(slot)
                    elif slot.process is not None and not slot.process.is_alive():
                        self._died(slot, now)
                pending = [s.due - now for s in self.slots if s.process is None]
                alive = [s.process.sentinel for s in self.slots if s.process is not None]
                if self._replacing is not None or self._roll or self._retired:
                    pending.append(0.05)  # a replacement in progress: look again soon
                wait(alive, timeout=max(0.01, min(pending, default=1.0)))
        finally:
            self._terminate_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.exit_code

    def _follow(self) -> None:
        """A new version in CURRENT: load it here once, then replace the workers one by one."""
        from models.artifact import current_version
        from server.ops.models import preload, preloaded_version

        try:
            current = current_version(self.preload)
        except OSError:
            return
        if current is None or current in (preloaded_version(), self._refused):
            return
        version = preload(self.preload)  # seconds at 1M items: the workers serve meanwhile
        if version != current:
            self._refused = current
            return
        self._roll = [s for s in self.slots if s.process is not None]
        log.info("model %s loaded once; replacing the %d workers one at a time", version, len(self._roll))

    def _replace_step(self, now: float) -> None:
        """Start the next replacement, retire the worker a ready one replaces, reap the retired."""
        r = self._replacing
        if r is not None:
            ready = False
            if r.ready.poll():
                try:
                    ready = r.ready.recv_bytes() == b"ready"
                except (EOFError, OSError):  # it died before serving
                    ready = False
            if ready:
                old, r.slot.process, r.slot.started = r.slot.process, r.process, r.started
                if old is not None and old.is_alive():
                    old.terminate()  # graceful: it stops listening and finishes its requests
                    said = f"worker (pid {old.pid}) replaced; it served its last requests"
                    self._retired.append((old, said))
                r.ready.close()
                self._replacing = None
            elif not r.process.is_alive() or now - r.started > READY_TIMEOUT_S:
                log.error("the new worker for slot %d did not start serving; keeping the old one and "
                          "stopping the replacement", r.slot.index)
                if r.process.is_alive():
                    r.process.terminate()
                self._retired.append((r.process, f"the failed new worker (pid {r.process.pid}) is gone"))
                r.ready.close()
                self._replacing, self._roll = None, []
        if self._replacing is None and self._roll:
            slot = self._roll.pop(0)
            if slot.process is not None:  # else it died meanwhile and restarts with the new model
                receive, send = self.context.Pipe(duplex=False)
                process = self._fork(slot, ready=send)
                send.close()  # the worker's end: EOF here if it dies first
                self._replacing = _Replacement(slot, process, receive, now)
        for gone in [r for r in self._retired if not r[0].is_alive()]:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(gone[0].pid, str(self.metrics_dir))
            self._retired.remove(gone)
            log.info(gone[1])

    def _fork(self, slot: _Slot, **kwargs) -> BaseProcess:
        if self.preload is not None:  # forked: the slot's sockets are inherited, not pickled
            if slot.sockets is None:
                slot.sockets = listening_sockets(self.settings.server.host, self.settings.server.port)
            kwargs["sockets"] = slot.sockets
            kwargs["others"] = [sock for s in self.slots if s is not slot for sock in s.sockets or ()]
        process = self.context.Process(target=self.target, name=f"vitrine-worker-{slot.index}",
                                       args=(self.settings, os.getpid(), self.metrics_dir), kwargs=kwargs)
        process.start()
        return process

    def _start(self, slot: _Slot) -> None:
        try:
            slot.process = self._fork(slot)
        except OSError as exc:  # its sockets could not be opened again (see _died), or no fork
            log.error("worker %d could not be started (%s:%s): %s; trying again in 1 s", slot.index,
                      self.settings.server.host, self.settings.server.port, exc.strerror or exc)
            slot.due = time.monotonic() + 1.0
            return
        slot.started = time.monotonic()

    def _died(self, slot: _Slot, now: float) -> None:
        from prometheus_client import multiprocess

        proc, slot.process = slot.process, None
        multiprocess.mark_process_dead(proc.pid, str(self.metrics_dir))  # its live gauges go
        if proc.exitcode == EXIT_CANNOT_LISTEN:
            log.error("worker %d cannot listen on the port; stopping the server", slot.index)
            self.stopping, self.exit_code = True, 1
            return
        lived = now - slot.started
        slot.quick_deaths = slot.quick_deaths + 1 if lived < STABLE_S else 0
        delay = 0.0 if slot.quick_deaths < 2 else min(0.25 * 2 ** (slot.quick_deaths - 1), MAX_BACKOFF_S)
        slot.due = now + delay
        if delay > 0 and slot.sockets is not None:
            # Connections queued for a worker that won't be back at once would wait the back-off
            # out: without the socket they go to the other workers (these ones are reset).
            for sock in slot.sockets:
                sock.close()
            slot.sockets = None
        how = (f"signal {signal.Signals(-proc.exitcode).name}" if proc.exitcode and proc.exitcode < 0
               else f"exit code {proc.exitcode}")
        log.error("worker %d (pid %d) died (%s) after %.1f s; restarting it in %.1f s",
                  slot.index, proc.pid, how, lived, delay,
                  extra={"worker": slot.index, "pid_died": proc.pid, "restart_in_s": delay})

    def _stop(self, signum: int, frame: object) -> None:  # noqa: ARG002
        self.stopping = True
        for proc in [s.process for s in self.slots] + [r[0] for r in self._retired] + \
                [self._replacing.process if self._replacing is not None else None]:
            if proc is not None and proc.is_alive():
                proc.terminate()

    def _terminate_all(self, timeout_s: float = 10.0) -> None:
        running = [s.process for s in self.slots if s.process is not None] + [r[0] for r in self._retired]
        if self._replacing is not None:
            running.append(self._replacing.process)
        for proc in running:
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + timeout_s
        for proc in running:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for slot in self.slots:
            for sock in slot.sockets or ():
                sock.close()
            slot.sockets = None
