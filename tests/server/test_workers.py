"""`vitrine serve` as operators run it: supervised workers, one server per port, metrics that add
up across workers, and nothing left behind by a `kill -9`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.server.processes import VITRINE, alive, children, free_port, http, serve, stop, wait_ready, workers


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^(\w+)(\{[^}]*\})? (\S+)$", line)
        if not m or m[1] != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m[2] or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m[3])
    return total


def _until(check, timeout_s: float, interval_s: float = 0.02):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


@pytest.fixture
def two_workers(tmp_path, model_store):
    port, log = free_port(), tmp_path / "server.log"
    proc = serve(port, model_store, tmp_path / "data", log, "--workers", "2")
    try:
        wait_ready(proc, port, log)
        assert _until(lambda: len(workers(proc.pid)) == 2, 10), children(proc.pid)
        yield proc, port, log
    finally:
        stop(proc)


def test_a_killed_worker_is_restarted_and_metrics_count_every_request(two_workers):
    proc, port, log = two_workers
    base = f"http://127.0.0.1:{port}"
    route = "/v1/recommendations"
    sent = 0
    for n in range(120):  # each on its own connection: SO_REUSEPORT spreads them over both workers
        status, _, _ = http(f"{base}{route}?session_id=s{n}&k=5")
        assert status == 200
        sent += 1
    before = workers(proc.pid)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    # How soon is printed, not asserted: a speed bound does not belong in a test on a noisy machine.
    replaced = _until(lambda: (w := workers(proc.pid)) - before and len(w) == 2 and w, 15, 0.005)
    back_s = time.monotonic() - killed_at
    assert replaced and victim not in replaced, (replaced, log.read_text()[-2000:])
    # Meanwhile and after, the server keeps answering (the surviving worker, then both).
    for n in range(120):
        status, _, _ = http(f"{base}{route}?session_id=t{n}&k=5")
        assert status == 200
        sent += 1

    def serving_pids():
        text = http(f"{base}/metrics")[2].decode()
        return {int(p) for p in re.findall(r'vitrine_model_info\{pid="(\d+)",version="[^"]+"\} 1\.0', text)}

    # The new worker loads the model and serves: both live workers report a model.
    assert _until(lambda: serving_pids() == replaced, 60, 0.05), (serving_pids(), replaced)
    print(f"worker restarted in {back_s:.2f} s, serving {time.monotonic() - killed_at:.2f} s after the kill")
    text = http(f"{base}/metrics")[2].decode()
    # One scrape sees the whole server: the killed worker's requests included.
    assert _metric(text, "vitrine_requests_total", route=route, status="200") == sent
    assert _metric(text, "vitrine_request_seconds_count", route=route) == sent
    assert _metric(text, "vitrine_recommendation_rung_total") == sent
    assert "died (signal SIGKILL)" in log.read_text()


def test_a_second_server_on_a_used_port_exits_with_a_clear_message(two_workers, tmp_path, model_store):
    _, port, _ = two_workers
    for args in (("--workers", "2"), ()):
        second = subprocess.run([*VITRINE, "serve", "--port", str(port), "--store", str(model_store),
                                 "--data-dir", str(tmp_path / "other"), *args],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1, second.stderr
        assert f"port {port} is already served by another `vitrine serve`" in second.stderr
    # Nothing of the second server is left: no Redis started in its data directory.
    assert not (tmp_path / "other" / "redis").exists()


def test_a_port_held_by_another_program_is_refused(tmp_path, model_store):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = subprocess.run([*VITRINE, "serve", "--port", str(port), "--store", str(model_store),
                                 "--data-dir", str(tmp_path / "data"), "--workers", "2"],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "another program" in result.stderr


@pytest.mark.parametrize("n_workers", ["1", "2"])
def test_kill_9_of_the_server_leaves_no_process_behind(tmp_path, model_store, n_workers):
    port, log = free_port(), tmp_path / "server.log"
    proc = serve(port, model_store, tmp_path / "data", log, "--workers", n_workers)
    try:
        wait_ready(proc, port, log)
        kids = children(proc.pid)
        redis = [p for p, cmd in kids.items() if "redis-server" in cmd]
        assert len(redis) == 1, kids
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = lambda: [p for p in kids if alive(p)]  # noqa: E731
        _until(lambda: not left(), 20)
        assert not left(), {p: kids[p] for p in left()}
        if n_workers == "2":  # the killed run's metrics directory is left, for the next server to remove
            assert list(Path(tempfile.gettempdir()).glob(f"vitrine-metrics-{proc.pid}-*"))
        # The next server on the same data directory starts its own Redis (the AOF intact).
        port2 = free_port()
        again = serve(port2, model_store, tmp_path / "data", log, "--workers", n_workers)
        try:
            wait_ready(again, port2, log)
            assert not list(Path(tempfile.gettempdir()).glob(f"vitrine-metrics-{proc.pid}-*"))
        finally:
            stop(again)
    finally:
        stop(proc)


def _crash_looping(tmp_path: Path, *, port: int = 8080, preload: Path | None = None) -> tuple:
    """A supervisor of one worker that dies at once (forked from `preload`'s model if given,
    else spawned): (its process, its log)."""
    script = (
        "import sys; from pathlib import Path\n"
        "from server.ops.logs import configure_logging\n"
        "from server.ops.workers import Supervisor\n"
        "from server.settings import Settings\n"
        "from tests.server.processes import crashing_worker\n"
        "settings = Settings().replace(**{'server.workers': 1, 'server.log_repeat_s': 0,\n"
        f"                                 'server.port': {port}}})\n"
        "configure_logging(settings.server)\n"
        "preload = Path(sys.argv[2]) if sys.argv[2] else None\n"
        "sys.exit(Supervisor(settings, Path(sys.argv[1]), target=crashing_worker, preload=preload).run())\n")
    log = tmp_path / "supervisor.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(preload or "")], stderr=out,
                                cwd=Path(__file__).resolve().parents[2])
    return proc, log


def test_a_crash_looping_worker_is_restarted_with_a_growing_back_off(tmp_path):
    proc, log = _crash_looping(tmp_path)
    pattern = r"died \(exit code 7\) after [\d.]+ s; restarting it in ([\d.]+) s"
    try:
        _until(lambda: len(re.findall(pattern, log.read_text())) >= 4, 60, 0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    delays = [float(d) for d in re.findall(pattern, log.read_text())]
    # At once the first time, then 0.5 s doubling while it keeps dying within 10 s of its start.
    assert delays[:4] == [0.0, 0.5, 1.0, 2.0], log.read_text()[-2000:]
    assert proc.returncode == 0


@contextlib.contextmanager
def _load(url: str, threads: int):
    """Requests to `url` from `threads` threads, each on a new connection, until the block ends:
    yields {status or exception name: count}, complete once the block has ended."""
    outcomes: dict = {}
    lock, done = threading.Lock(), threading.Event()

    def run() -> None:
        while not done.is_set():
            try:
                outcome = http(url)[0]
            except Exception as exc:  # noqa: BLE001 - counted, asserted by the caller
                outcome = type(exc).__name__
            with lock:
                outcomes[outcome] = outcomes.get(outcome, 0) + 1

    pool = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    try:
        yield outcomes
    finally:
        done.set()
        for t in pool:
            t.join(15)


def test_a_backing_off_workers_port_share_is_refused_not_left_waiting(tmp_path, model_store):
    """A crash-looping forked worker's slot closes its socket while it backs off: a connection
    is refused at once (a client or balancer tries elsewhere) instead of waiting out the back-off
    in a queue nobody accepts from."""
    port = free_port()
    proc, log = _crash_looping(tmp_path, port=port, preload=model_store)
    try:
        assert _until(lambda: "restarting it in 2.0 s" in log.read_text(), 60, 0.01), log.read_text()[-2000:]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0


def _served(log: Path, version: str, preloaded: bool) -> set[int]:
    """Pids of the workers that logged serving `version` (taken from the supervisor or not)."""
    suffix = " (loaded once by the supervisor)" if preloaded else ""
    return {int(p) for p in re.findall(rf'"message":"serving model {re.escape(version)}{re.escape(suffix)}",'
                                       rf'[^\n]*"pid":(\d+)', log.read_text())}


def test_workers_share_the_supervisors_model_and_are_replaced_for_a_new_version(tmp_path, model_store):
    from models import artifact

    store = tmp_path / "models"
    shutil.copytree(model_store, store)
    first = artifact.current_version(store)
    port, log = free_port(), tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    proc = serve(port, store, tmp_path / "data", log, "--workers", "2",
                 env={"VITRINE_MODEL_RELOAD_INTERVAL_S": "0.2"})
    try:
        wait_ready(proc, port, log)
        assert _until(lambda: len(workers(proc.pid)) == 2, 10), children(proc.pid)
        # Each worker took the supervisor's model over instead of loading its own.
        assert f"model {first} loaded once for 2 workers" in log.read_text()
        assert _until(lambda: _served(log, first, True) == workers(proc.pid), 10), log.read_text()[-3000:]
        victim = min(workers(proc.pid))
        os.kill(victim, signal.SIGKILL)
        assert _until(lambda: len(w := workers(proc.pid)) == 2 and victim not in w, 10)
        assert _until(lambda: _served(log, first, True) >= workers(proc.pid), 10), log.read_text()[-3000:]

        # A new version: the supervisor loads it once and replaces the workers one at a time,
        # each new one forked with it; the server answers throughout.
        before = workers(proc.pid)
        second = "v-second"
        shutil.copytree(store / first, store / second)
        manifest = json.loads((store / second / "manifest.json").read_text())
        (store / second / "manifest.json").write_text(json.dumps({**manifest, "version": second}))
        with _load(f"{base}/v1/recommendations?session_id=s1&k=5", threads=12) as outcomes:
            artifact.set_current(store, second)

            def replaced() -> bool:
                now = workers(proc.pid)
                return len(now) == 2 and not now & before and now <= _served(log, second, True)

            assert _until(replaced, 30), log.read_text()[-3000:]
            assert _until(lambda: log.read_text().count("replaced; it served its last requests") == 2, 10)
        text = log.read_text()
        assert f"model {second} loaded once; replacing the 2 workers one at a time" in text
        # A new connection per request throughout: none reset by a replaced worker closing its
        # socket (the slot's socket outlives it), every request answered.
        assert set(outcomes) == {200}, outcomes  # (and the load ran: 200 is there)
        assert "died" not in text.split(f"model {second} loaded once")[1]  # replaced, not crashed
        assert not _served(log, second, False)  # no worker loaded its own copy meanwhile

        # A worker restarted now is forked with the new version.
        victim = min(workers(proc.pid))
        os.kill(victim, signal.SIGKILL)
        assert _until(lambda: len(w := workers(proc.pid)) == 2 and victim not in w, 10)
        assert _until(lambda: workers(proc.pid) <= _served(log, second, True), 20), log.read_text()[-3000:]
        assert http(f"{base}/v1/recommendations?session_id=s1&k=5")[0] == 200
    finally:
        stop(proc)


def test_connections_queued_for_a_replaced_worker_are_answered_by_its_replacement(tmp_path, model_store):
    """The kernel queues each new connection on one worker slot's socket. A worker that is busy
    (here: stopped) when it is replaced leaves its queue to the new worker of its slot instead of
    taking it down with its socket."""
    from models import artifact

    store = tmp_path / "models"
    shutil.copytree(model_store, store)
    first = artifact.current_version(store)
    port, log = free_port(), tmp_path / "server.log"
    proc = serve(port, store, tmp_path / "data", log, "--workers", "2",
                 env={"VITRINE_MODEL_RELOAD_INTERVAL_S": "0.2"})
    victim = None
    try:
        wait_ready(proc, port, log)
        assert _until(lambda: len(w := workers(proc.pid)) == 2 and _served(log, first, True) == w, 10)
        victim = min(workers(proc.pid))
        os.kill(victim, signal.SIGSTOP)
        # About half of these land on the stopped worker's socket and wait there.
        conns = []
        for _ in range(24):
            conn = socket.create_connection(("127.0.0.1", port), timeout=30)
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: vitrine\r\nConnection: close\r\n\r\n")
            conns.append(conn)
        shutil.copytree(store / first, store / "v-second")
        manifest = json.loads((store / "v-second" / "manifest.json").read_text())
        (store / "v-second" / "manifest.json").write_text(json.dumps({**manifest, "version": "v-second"}))
        artifact.set_current(store, "v-second")
        # Every connection answered while the replaced worker is still stopped.
        answers = []
        for conn in conns:
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                answers.append(data.split(b"\r\n", 1)[0])
        assert answers == [b"HTTP/1.1 200 OK"] * 24, answers
        stat = Path(f"/proc/{victim}/stat").read_text()
        assert stat[stat.rindex(")") + 2] == "T"  # still stopped: its replacement answered them
    finally:
        if victim is not None and alive(victim):
            os.kill(victim, signal.SIGCONT)
        stop(proc)


def test_a_request_arriving_just_after_sigterm_on_an_accepted_connection_is_answered(tmp_path, model_store):
    """Stopping, the server stops accepting but still answers the connections it accepted: a
    client that connected just before SIGTERM and sends its request just after gets its answer
    (aiohttp's run_app closed such a connection unanswered)."""
    port, log = free_port(), tmp_path / "server.log"
    proc = serve(port, model_store, tmp_path / "data", log)
    try:
        wait_ready(proc, port, log)
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        time.sleep(0.3)  # accepted by the server, no request yet
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        with conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: vitrine\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK"), data[:200]
        assert proc.wait(30) == 0
        with pytest.raises(ConnectionRefusedError):  # and it is gone
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        stop(proc)
