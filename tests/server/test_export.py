"""Exporting the durable event stream to the JSON Lines files the trainer reads."""

import msgspec
import pytest

from models.events import Event
from server.export import ExportBusy, export_events
from server.keys import Keys
from server.session_store import SessionStore, StoreConfig
from training.readers import read_events
from vitrine.cli import main

T0 = 1_800_000_000_000
KEYS = Keys("vt")


def ev(event_id, item="i1", type="view", ts=T0, user_id="u1", **extra) -> Event:
    return Event(event_id=event_id, session_id="s1", type=type, ts=ts, item_id=item, user_id=user_id,
                 **extra)


@pytest.fixture
async def store(redis_url):
    store = SessionStore.connect(redis_url, StoreConfig(timeout_s=5.0))
    yield store
    await store.aclose()


async def test_exported_events_read_back_by_the_trainer_field_for_field(store, tmp_path):
    events = [ev("a", "i1", category="shoes", price=19.5, channel="app"),
              ev("b", "i2", "purchase", T0 + 5, quantity=2),
              Event(event_id="c", session_id="anon", type="search", ts=T0 + 6, query="red shoes")]
    await store.ingest(events, now_ms=T0)
    path, n = await export_events(store.redis, tmp_path)
    assert n == 3 and path.parent == tmp_path
    decoded = [msgspec.json.decode(line, type=Event) for line in path.read_bytes().splitlines()]
    assert decoded == events
    log, report = read_events(path)  # the trainer reads exactly what the server exports
    assert report.rows_read == 3 and sorted(log.item_ids) == ["i1", "i2"]


async def test_export_resumes_from_its_checkpoint_and_trims_only_what_it_wrote(store, tmp_path):
    await store.ingest([ev("a"), ev("b", "i2")], now_ms=T0)
    first, n1 = await export_events(store.redis, tmp_path)
    assert n1 == 2 and await store.redis.xlen(KEYS.stream) == 0
    assert await export_events(store.redis, tmp_path) == (None, 0)
    await store.ingest([ev("c", "i3")], now_ms=T0)
    second, n2 = await export_events(store.redis, tmp_path)
    assert n2 == 1 and second != first and first.exists()  # never overwrites an earlier file
    assert [msgspec.json.decode(x, type=Event).event_id for x in second.read_bytes().splitlines()] == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])  # no .part


async def test_export_keeps_the_stream_when_asked_and_dedups_a_re_added_event(store, tmp_path):
    await store.ingest([ev("a"), ev("b", "i2")], now_ms=T0)
    # An at-least-once stream may hold an event twice (e.g. added by an older server's retry).
    payload = (await store.redis.xrange(KEYS.stream, count=1))[0][1][b"e"]
    await store.redis.xadd(KEYS.stream, {"e": payload})
    path, n = await export_events(store.redis, tmp_path, trim=False)
    assert n == 2 and await store.redis.xlen(KEYS.stream) == 3
    assert len(path.read_bytes().splitlines()) == 2


async def test_a_second_concurrent_export_is_refused(store, tmp_path):
    await store.redis.set(KEYS.export_lock, "someone-else")
    with pytest.raises(ExportBusy):
        await export_events(store.redis, tmp_path)
    assert await store.redis.get(KEYS.export_lock) == b"someone-else"  # not released by us


async def test_a_failed_write_trims_nothing(store, tmp_path):
    await store.ingest([ev("a")], now_ms=T0)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        await export_events(store.redis, blocker / "out")
    assert await store.redis.xlen(KEYS.stream) == 1 and await store.redis.get(KEYS.export_position) is None
    assert await store.redis.get(KEYS.export_lock) is None


async def test_cli_exports_from_a_redis_url(store, redis_url, tmp_path, capsys):
    await store.ingest([ev("a"), ev("b", "i2")], now_ms=T0)
    assert await _cli(["events", "export", "--out", str(tmp_path / "out"), "--redis-url", redis_url]) == 0
    assert "exported 2 events" in capsys.readouterr().out
    assert len(list((tmp_path / "out").glob("events-*.jsonl"))) == 1


async def test_cli_reports_an_unreachable_redis_without_a_traceback(tmp_path, capsys):
    url = f"unix://{tmp_path}/nothing.sock"
    assert await _cli(["events", "export", "--out", str(tmp_path), "--redis-url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vitrine: cannot export:") and "Traceback" not in err


async def _cli(argv: list[str]) -> int:
    # The CLI runs its own event loop (asyncio.run): give it a thread of its own.
    import asyncio

    return await asyncio.to_thread(main, argv)


def test_export_attaches_to_a_running_embedded_redis(tmp_path):
    import redis

    from server.embedded_redis import EmbeddedRedis

    running = EmbeddedRedis(tmp_path / "data" / "redis").start()
    try:
        client = redis.Redis.from_url(running.url)
        client.xadd(KEYS.stream, {"e": msgspec.msgpack.encode(ev("a"))})
        assert main(["events", "export", "--out", str(tmp_path / "out"),
                     "--data-dir", str(tmp_path / "data")]) == 0
        assert client.ping() and client.xlen(KEYS.stream) == 0  # same server, still up
        client.close()
    finally:
        running.stop()

