"""JSON logs with request ids, the sampled access log, and repeated errors rate-limited."""

from __future__ import annotations

import asyncio
import io
import logging
import shutil

import orjson
import pytest
from aiohttp import web

from models import artifact
from server.app import create_app
from server.ops.logs import RepeatFilter, configure_logging
from server.settings import Settings
from tests.server.conftest import make_settings


@pytest.fixture
def log_lines():
    """Route the process's logs (as configure_logging does for a server) into a buffer; give
    back a function returning the JSON lines written so far."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()

    def configure(settings: Settings) -> None:
        configure_logging(settings.server, stream=buffer)

    def lines() -> list[dict]:
        return [orjson.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    yield configure, lines
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


async def test_access_log_and_errors_carry_the_request_id(aiohttp_client, model_store, redis_url, tmp_path,
                                                          log_lines):
    configure, lines = log_lines
    settings = make_settings(model_store, redis_url, tmp_path, **{"server.access_log_sample": 1.0})
    configure(settings)
    app = create_app(settings)

    async def boom(request: web.Request) -> web.Response:
        logging.getLogger("vitrine.test").warning("about to fail")
        raise RuntimeError("a bug")

    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    resp = await client.get("/v1/recommendations", params={"session_id": "s", "k": 3},
                            headers={"X-Request-ID": "req-123"})
    assert resp.status == 200
    failed = await client.get("/boom", headers={"X-Request-ID": "req-boom"})
    assert failed.status == 500 and (await failed.json())["error"] == "internal"
    access = [line for line in lines() if line["logger"] == "vitrine.access"]
    recs = next(line for line in access if line["request_id"] == "req-123")
    assert recs["route"] == "/v1/recommendations" and recs["status"] == 200 and recs["method"] == "GET"
    assert recs["rung"] in ("session", "trending", "popular") and recs["ms"] > 0
    assert {"time", "level", "pid", "message"} <= set(recs)
    in_request = [line for line in lines() if line.get("request_id") == "req-boom"]
    assert {line["logger"] for line in in_request} >= {"vitrine.test", "vitrine.server", "vitrine.access"}
    error = next(line for line in in_request if line["logger"] == "vitrine.server")
    assert error["level"] == "ERROR" and "a bug" in error["exc_info"]


async def test_access_log_sampling(aiohttp_client, model_store, redis_url, tmp_path, log_lines):
    configure, lines = log_lines
    settings = make_settings(model_store, redis_url, tmp_path, **{"server.access_log_sample": 0.1})
    configure(settings)
    client = await aiohttp_client(create_app(settings))
    for _ in range(400):
        assert (await client.get("/healthz")).status == 200
    logged = sum(line["logger"] == "vitrine.access" for line in lines())
    assert 10 <= logged <= 90  # 40 expected; binomial(400, 0.1) stays within these > 99.99% of runs


async def test_a_failing_model_reload_is_logged_once_not_every_poll(aiohttp_client, model_store, redis_url,
                                                                   tmp_path, log_lines):
    configure, lines = log_lines
    store = tmp_path / "models"
    shutil.copytree(model_store, store)
    settings = make_settings(store, redis_url, tmp_path)  # polls CURRENT every 0.05 s
    configure(settings)
    client = await aiohttp_client(create_app(settings))
    current = (await (await client.get("/v1/models/current")).json())["version"]
    bad = "29990101T000000Z-0000dead"
    shutil.copytree(store / current, store / bad)
    manifest = orjson.loads((store / bad / "manifest.json").read_bytes())
    (store / bad / "manifest.json").write_bytes(orjson.dumps({**manifest, "version": bad}))
    (store / bad / "index.faiss").write_bytes(b"garbage")
    (store / artifact.CURRENT).write_text(bad)  # by hand: set_current would refuse it
    await asyncio.sleep(1.0)  # ~20 polls, each failing
    info = await (await client.get("/v1/models/current")).json()
    assert info["version"] == current and info["reload_error"]
    failures = [line for line in lines() if "model not loaded, still serving" in line["message"]]
    assert len(failures) == 1, failures


def test_repeat_filter_counts_what_it_dropped():
    clock = [0.0]
    f = RepeatFilter(60, clock=lambda: clock[0])

    def record(msg: str, level: int = logging.ERROR) -> logging.LogRecord:
        return logging.LogRecord("vitrine.x", level, __file__, 1, msg, (), None)

    assert f.filter(record("redis down"))
    assert [f.filter(record("redis down")) for _ in range(5)] == [False] * 5
    assert f.filter(record("another error"))  # a different text is not a repeat
    assert all(f.filter(record("info", logging.INFO)) for _ in range(3))  # below WARNING: never
    clock[0] = 61.0
    again = record("redis down")
    assert f.filter(again) and again.repeated == 5
    assert not f.filter(record("redis down"))


def test_auto_format_is_text_on_a_terminal_and_json_elsewhere(log_lines):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        for stream, is_json in ((Terminal(), False), (io.StringIO(), True)):
            configure_logging(Settings().server, stream=stream)
            record = logging.LogRecord("vitrine.x", logging.WARNING, __file__, 1, "hello", (), None)
            record.request_id = "rid-1"
            root.handlers[0].handle(record)
            line = stream.getvalue().strip()
            if is_json:
                assert orjson.loads(line)["request_id"] == "rid-1"
            else:
                assert line.endswith("vitrine.x WARNING hello [rid-1]")
    finally:
        root.handlers[:] = saved
