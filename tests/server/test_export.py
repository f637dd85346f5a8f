"""Exporting the durable event stream to the JSON Lines files the trainer reads."""

import msgspec
import pytest

from models.events import Event
from server.events.export import ExportBusy, export_events
from server.store.keys import Keys
from tests.stores import Stores
from training.readers import read_events
from vitrine.cli import main

T0 = 1_800_000_000_000
KEYS = Keys("vt", 1)
STREAM = KEYS.stream(0)


def ev(event_id, item="i1", type="view", ts=T0, user_id="u1", **extra) -> Event:
    return Event(event_id=event_id, session_id="s1", type=type, ts=ts, item_id=item, user_id=user_id,
                 **extra)


class Store:
    """The session store and redis-py over one Redis, as `vitrine events export` sees it."""

    def __init__(self, stores: Stores):
        self.stores, self.redis = stores, stores.client

    async def ingest(self, events, now_ms):
        return await self.stores.sessions.ingest(events, now_ms=now_ms)


async def export_one(client, out_dir, **kw):
    """The export of a one-shard store: (path, n) of its file, (None, 0) when nothing new."""
    written = await export_events(client, out_dir, KEYS, **kw)
    assert len(written) <= 1
    return written[0] if written else (None, 0)


@pytest.fixture
async def store(redis_url):
    stores = Stores.open(redis_url, timeout_ms=5000, shards=1)
    yield Store(stores)
    await stores.aclose()


async def test_exported_events_read_back_by_the_trainer_field_for_field(store, tmp_path):
    events = [ev("a", "i1", category="shoes", price=19.5, channel="app"),
              ev("b", "i2", "purchase", T0 + 5, quantity=2),
              Event(event_id="c", session_id="anon", type="search", ts=T0 + 6, query="red shoes")]
    await store.ingest(events, now_ms=T0)
    path, n = await export_one(store.redis, tmp_path)
    assert n == 3 and path.parent == tmp_path
    decoded = [msgspec.json.decode(line, type=Event) for line in path.read_bytes().splitlines()]
    assert decoded == events
    log, report = read_events(path)  # the trainer reads exactly what the server exports
    assert report.rows_read == 3 and sorted(log.item_ids) == ["i1", "i2"]


async def test_export_resumes_from_its_checkpoint_and_trims_only_what_it_wrote(store, tmp_path):
    await store.ingest([ev("a"), ev("b", "i2")], now_ms=T0)
    first, n1 = await export_one(store.redis, tmp_path)
    assert n1 == 2 and await store.redis.xlen(STREAM) == 0
    assert await export_one(store.redis, tmp_path) == (None, 0)
    await store.ingest([ev("c", "i3")], now_ms=T0)
    second, n2 = await export_one(store.redis, tmp_path)
    assert n2 == 1 and second != first and first.exists()  # never overwrites an earlier file
    assert [msgspec.json.decode(x, type=Event).event_id for x in second.read_bytes().splitlines()] == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])  # no .part


async def test_export_keeps_the_stream_when_asked_and_dedups_a_re_added_event(store, tmp_path):
    await store.ingest([ev("a"), ev("b", "i2")], now_ms=T0)
    # An at-least-once stream may hold an event twice (e.g. added by an older server's retry).
    payload = (await store.redis.xrange(STREAM, count=1))[0][1][b"e"]
    await store.redis.xadd(STREAM, {"e": payload})
    path, n = await export_one(store.redis, tmp_path, trim=False)
    assert n == 2 and await store.redis.xlen(STREAM) == 3
    assert len(path.read_bytes().splitlines()) == 2


async def test_two_shoppers_events_with_one_id_are_both_exported_and_trained_on(store, tmp_path):
    """Event ids are scoped per shopper from ingest to training: reusing another shopper's id
    suppresses nothing."""
    await store.ingest([ev("order-1", "i1", "purchase", user_id="u1"),
                        ev("order-1", "i2", "purchase", user_id="u2"),
                        Event(event_id="order-1", session_id="anon", type="view", ts=T0, item_id="i3")],
                       now_ms=T0)
    path, n = await export_one(store.redis, tmp_path)
    assert n == 3
    log, report = read_events(path)
    assert report.duplicates == 0 and sorted(log.item_ids) == ["i1", "i2", "i3"]


async def test_an_event_accepted_before_the_bounds_is_still_exported(store, tmp_path):
    """Entries are exported as they were accepted: a stream written by an earlier version may
    hold values today's schema refuses, and they were acknowledged."""
    legacy = msgspec.msgpack.encode({"event_id": "old", "session_id": "s1", "type": "search", "ts": T0,
                                     "query": "q" * 5_000, "quantity": 10**17})
    await store.redis.xadd(STREAM, {"e": legacy})
    path, n = await export_one(store.redis, tmp_path)
    assert n == 1 and msgspec.json.decode(path.read_bytes())["quantity"] == 10**17


async def test_a_second_concurrent_export_is_refused(store, tmp_path):
    await store.redis.set(KEYS.export_lock, "someone-else")
    with pytest.raises(ExportBusy):
        await export_one(store.redis, tmp_path)
    assert await store.redis.get(KEYS.export_lock) == b"someone-else"  # not released by us


async def test_a_failed_write_trims_nothing(store, tmp_path):
    await store.ingest([ev("a")], now_ms=T0)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        await export_one(store.redis, blocker / "out")
    assert await store.redis.xlen(STREAM) == 1 and await store.redis.get(KEYS.export_position(0)) is None
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

    from server.store.embedded import EmbeddedRedis

    running = EmbeddedRedis(tmp_path / "data" / "redis").start()
    try:
        client = redis.Redis.from_url(running.url)
        client.xadd(STREAM, {"e": msgspec.msgpack.encode(ev("a"))})
        assert main(["events", "export", "--out", str(tmp_path / "out"),
                     "--data-dir", str(tmp_path / "data")]) == 0
        assert client.ping() and client.xlen(STREAM) == 0  # same server, still up
        client.close()
    finally:
        running.stop()



def test_export_with_the_data_dir_setting_reads_what_the_server_stored(tmp_path, monkeypatch):
    """VITRINE_DATA_DIR, as the Dockerfile sets it: export finds the server's embedded Redis."""
    import redis

    from server.store.embedded import EmbeddedRedis

    running = EmbeddedRedis(tmp_path / "srv-data" / "redis").start()
    monkeypatch.chdir(tmp_path)  # a ./var here must not be where the export looks
    monkeypatch.setenv("VITRINE_DATA_DIR", str(tmp_path / "srv-data"))
    try:
        client = redis.Redis.from_url(running.url)
        client.xadd(STREAM, {"e": msgspec.msgpack.encode(ev("a"))})
        assert main(["events", "export", "--out", str(tmp_path / "out")]) == 0
        assert client.xlen(STREAM) == 0 and not (tmp_path / "var").exists()
        assert len(list((tmp_path / "out").glob("events-*.jsonl"))) == 1
        client.close()
    finally:
        running.stop()


async def test_the_stream_of_a_version_before_the_shards_is_exported_too(store, tmp_path):
    legacy = "vt:{g}:stream"
    await store.redis.xadd(legacy, {"e": msgspec.msgpack.encode(ev("old"))})
    await store.ingest([ev("new", "i2")], now_ms=T0)
    written = await export_events(store.redis, tmp_path, KEYS)
    events = sorted(msgspec.json.decode(line, type=Event).event_id
                    for path, _ in written for line in path.read_bytes().splitlines())
    assert events == ["new", "old"] and await store.redis.xlen(legacy) == 0


async def test_export_from_every_redis_flavour_reads_every_shard(redis_target, tmp_path):
    stores = Stores.open(redis_target.url, cluster=redis_target.cluster, timeout_ms=5000)
    try:
        events = [ev(f"e{i}", f"i{i}", user_id=f"u{i}") for i in range(40)]  # many shoppers, many shards
        assert (await stores.sessions.ingest(events, now_ms=T0)).accepted == 40
        keys = stores.keys
        written = await export_events(stores.client, tmp_path, keys)
        exported = sorted(msgspec.json.decode(line, type=Event).event_id
                          for path, _ in written for line in path.read_bytes().splitlines())
        assert exported == sorted(e.event_id for e in events)
        assert len(written) == len({keys.shard_of(f"{{u:u{i}}}") for i in range(40)})
        assert sum([await stores.client.xlen(keys.stream(n)) for n in range(keys.shards)]) == 0
    finally:
        await stores.aclose()
