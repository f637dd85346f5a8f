"""Exporting the durable event streams into the Parquet event archive the trainer reads."""

import random
import sys
import threading

import msgspec
import pytest
import redis

from models import archive
from models.events import Event
from server.events.export import ExportBusy, export_events, shard_root
from server.store.keys import Keys
from tests.models.test_archive_crash import kill_repeatedly
from tests.stores import Stores
from training.readers import read_event_table
from vitrine.cli import main

T0 = 1_800_000_000_000
KEYS = Keys("vt", 1)
STREAM = KEYS.stream(0)


def ev(event_id, item="i1", type="view", ts=T0, user_id="u1", **extra) -> Event:
    return Event(event_id=event_id, session_id="s1", type=type, ts=ts, item_id=item, user_id=user_id,
                 **extra)


def archived(root) -> list[dict]:
    return archive.read_window(root).to_pylist()


@pytest.fixture
async def stores(redis_url):
    stores = Stores.open(redis_url, timeout_ms=5000, shards=1)
    yield stores
    await stores.aclose()


async def test_exported_events_read_back_by_the_trainer_field_for_field(stores, tmp_path):
    events = [ev("a", "i1", category="shoes", price=19.5, channel="app"),
              ev("b", "i2", "purchase", T0 + 5, quantity=2),
              Event(event_id="c", session_id="anon", type="search", ts=T0 + 6, query="red shoes")]
    await stores.sessions.ingest(events, now_ms=T0)
    written = await export_events(stores.client, tmp_path, KEYS)
    assert written == {shard_root(tmp_path, 0): 3}
    rows = {r["event_id"]: r for r in archived(tmp_path)}
    for e in events:
        expected = msgspec.to_builtins(e)
        assert {k: rows[e.event_id][k] for k in expected} == expected
    log, report = read_event_table(archive.read_window(tmp_path), "archive")  # the trainer reads the archive
    assert report.rows_kept == 3 and sorted(log.item_ids) == ["i1", "i2"]


async def test_export_resumes_after_its_commit_and_trims_only_what_it_archived(stores, tmp_path):
    await stores.sessions.ingest([ev("a"), ev("b", "i2")], now_ms=T0)
    assert await export_events(stores.client, tmp_path, KEYS) == {shard_root(tmp_path, 0): 2}
    assert await stores.client.xlen(STREAM) == 0
    assert await export_events(stores.client, tmp_path, KEYS) == {}
    await stores.sessions.ingest([ev("c", "i3")], now_ms=T0)
    assert await export_events(stores.client, tmp_path, KEYS) == {shard_root(tmp_path, 0): 1}
    assert sorted(r["event_id"] for r in archived(tmp_path)) == ["a", "b", "c"]


async def test_kept_entries_are_not_archived_twice(stores, tmp_path):
    await stores.sessions.ingest([ev("a"), ev("b", "i2")], now_ms=T0)
    await export_events(stores.client, tmp_path, KEYS, trim=False)
    assert await stores.client.xlen(STREAM) == 2
    assert await export_events(stores.client, tmp_path, KEYS, trim=False) == {}  # after the commit
    # An at-least-once stream may hold an event twice (an older server's retry): archived once.
    payload = (await stores.client.xrange(STREAM, count=1))[0][1][b"e"]
    await stores.client.xadd(STREAM, {"e": payload})
    await export_events(stores.client, tmp_path, KEYS)
    assert sorted(r["event_id"] for r in archived(tmp_path)) == ["a", "b"]


async def test_two_shoppers_events_with_one_id_are_both_exported_and_trained_on(stores, tmp_path):
    """Event ids are scoped per shopper from ingest to training: reusing another shopper's id
    suppresses nothing."""
    await stores.sessions.ingest([ev("order-1", "i1", "purchase", user_id="u1"),
                                  ev("order-1", "i2", "purchase", user_id="u2"),
                                  Event(event_id="order-1", session_id="anon", type="view", ts=T0,
                                        item_id="i3")],
                                 now_ms=T0)
    await export_events(stores.client, tmp_path, KEYS)
    log, report = read_event_table(archive.read_window(tmp_path), "archive")
    assert report.duplicates == 0 and sorted(log.item_ids) == ["i1", "i2", "i3"]


async def test_an_event_accepted_before_the_bounds_is_still_exported(stores, tmp_path):
    """Entries are archived as they were accepted: a stream written by an earlier version may
    hold values today's schema refuses, and they were acknowledged."""
    legacy = msgspec.msgpack.encode({"event_id": "old", "session_id": "s1", "type": "search", "ts": T0,
                                     "query": "q" * 5_000, "quantity": 70_000})
    await stores.client.xadd(STREAM, {"e": legacy})
    await export_events(stores.client, tmp_path, KEYS)
    (row,) = archived(tmp_path)
    assert row["quantity"] == 70_000 and len(row["query"]) == 5_000 and row["channel"] == "web"


async def test_a_second_concurrent_export_is_refused(stores, tmp_path):
    await stores.client.set(KEYS.export_lock, "someone-else")
    with pytest.raises(ExportBusy):
        await export_events(stores.client, tmp_path, KEYS)
    assert await stores.client.get(KEYS.export_lock) == b"someone-else"  # not released by us


async def test_a_failed_write_trims_nothing(stores, tmp_path):
    await stores.sessions.ingest([ev("a")], now_ms=T0)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        await export_events(stores.client, blocker / "archive", KEYS)
    assert await stores.client.xlen(STREAM) == 1
    assert await stores.client.get(KEYS.export_lock) is None


async def test_erased_shoppers_are_left_out(stores, tmp_path):
    await stores.sessions.ingest([ev("a", user_id="u1"), ev("b", user_id="gone")], now_ms=T0)
    await stores.client.sadd(KEYS.erased, Keys.erased_member("u", "gone"))  # as DELETE /v1/users/gone
    await export_events(stores.client, tmp_path, KEYS)
    assert [r["user_id"] for r in archived(tmp_path)] == ["u1"]
    assert await stores.client.xlen(STREAM) == 0  # left out, and trimmed with the rest


async def test_the_stream_of_a_version_before_the_shards_is_exported_too(stores, tmp_path):
    legacy = "vt:{g}:stream"
    await stores.client.xadd(legacy, {"e": msgspec.msgpack.encode(ev("old"))})
    await stores.sessions.ingest([ev("new", "i2")], now_ms=T0)
    written = await export_events(stores.client, tmp_path, KEYS)
    assert written == {shard_root(tmp_path, None): 1, shard_root(tmp_path, 0): 1}
    assert sorted(r["event_id"] for r in archived(tmp_path)) == ["new", "old"]
    assert await stores.client.xlen(legacy) == 0


async def test_export_from_every_redis_flavour_reads_every_shard(redis_target, tmp_path):
    stores = Stores.open(redis_target.url, cluster=redis_target.cluster, timeout_ms=5000)
    try:
        events = [ev(f"e{i}", f"i{i}", user_id=f"u{i}") for i in range(40)]  # many shoppers, many shards
        assert (await stores.sessions.ingest(events, now_ms=T0)).accepted == 40
        keys = stores.keys
        written = await export_events(stores.client, tmp_path, keys)
        assert sorted(r["event_id"] for r in archived(tmp_path)) == sorted(e.event_id for e in events)
        assert len(written) == len({keys.shard_of(f"{{u:u{i}}}") for i in range(40)})
        assert sum([await stores.client.xlen(keys.stream(n)) for n in range(keys.shards)]) == 0
    finally:
        await stores.aclose()


async def test_cli_exports_from_a_redis_url(stores, redis_url, tmp_path, capsys):
    await stores.sessions.ingest([ev("a"), ev("b", "i2")], now_ms=T0)
    argv = ["events", "export", "--archive", str(tmp_path / "arc"), "--redis-url", redis_url]
    assert await _cli(argv) == 0
    assert "exported 2 events" in capsys.readouterr().out
    assert len(archived(tmp_path / "arc")) == 2


async def test_cli_reports_an_unreachable_redis_without_a_traceback(tmp_path, capsys):
    url = f"unix://{tmp_path}/nothing.sock"
    assert await _cli(["events", "export", "--archive", str(tmp_path), "--redis-url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vitrine: cannot export:") and "Traceback" not in err


async def _cli(argv: list[str]) -> int:
    # The CLI runs its own event loop (asyncio.run): give it a thread of its own.
    import asyncio

    return await asyncio.to_thread(main, argv)


def test_export_attaches_to_a_running_embedded_redis(tmp_path):
    from server.store.embedded import EmbeddedRedis

    running = EmbeddedRedis(tmp_path / "data" / "redis").start()
    try:
        client = redis.Redis.from_url(running.url)
        client.xadd(STREAM, {"e": msgspec.msgpack.encode(ev("a"))})
        assert main(["events", "export", "--data-dir", str(tmp_path / "data")]) == 0
        assert client.ping() and client.xlen(STREAM) == 0  # same server, still up
        assert len(archived(tmp_path / "data" / "archive")) == 1  # the default: <data.dir>/archive
        client.close()
    finally:
        running.stop()


def test_export_with_the_data_dir_setting_reads_what_the_server_stored(tmp_path, monkeypatch):
    """VITRINE_DATA_DIR, as the Dockerfile sets it: export finds the server's embedded Redis."""
    from server.store.embedded import EmbeddedRedis

    running = EmbeddedRedis(tmp_path / "srv-data" / "redis").start()
    monkeypatch.chdir(tmp_path)  # a ./var here must not be where the export looks
    monkeypatch.setenv("VITRINE_DATA_DIR", str(tmp_path / "srv-data"))
    try:
        client = redis.Redis.from_url(running.url)
        client.xadd(STREAM, {"e": msgspec.msgpack.encode(ev("a"))})
        assert main(["events", "export"]) == 0
        assert client.xlen(STREAM) == 0 and not (tmp_path / "var").exists()
        assert len(archived(tmp_path / "srv-data" / "archive")) == 1
        client.close()
    finally:
        running.stop()


def test_an_exporter_killed_20_times_while_events_flow_archives_each_once(redis_url, tmp_path):
    """#26's crash test on the real path: events ingested into Redis while `vitrine events
    export` runs in a loop and is SIGKILLed at random moments; then a last export drains."""
    rng = random.Random(7)
    client = redis.Redis.from_url(redis_url)
    acked: list[str] = []
    lock = threading.Lock()

    def flow():  # what the server's ingest does for one shard: one entry per acknowledged event
        # The killed exporter's lock would expire after its TTL; don't wait for it here.
        client.delete(KEYS.export_lock)
        with lock:
            for _ in range(rng.randrange(100, 400)):
                i = len(acked)
                event = ev(f"e{i}", f"i{i % 50}", ts=T0 + i * 60_000, user_id=None if i % 3 else f"u{i % 7}")
                client.xadd(STREAM, {"e": msgspec.msgpack.encode(event)})
                acked.append(event.event_id)

    # Small batches: an export is many commits, so kills land inside batches too.
    argv = ["events", "export", "--archive", str(tmp_path / "arc"), "--redis-url", redis_url, "--batch", "5"]
    loop = (f"import time; from vitrine.cli import main\n"
            f"while True:\n    main({argv!r})\n    time.sleep(0.01)\n")
    command = [sys.executable, "-c", loop]

    def in_flight() -> bool:  # killed between a batch's intent and its commit
        shard = tmp_path / "arc" / "shard-0"
        if not (shard / "_pending").exists():
            return False
        pending = msgspec.json.decode((shard / "_pending").read_bytes())["last_id"]
        committed = archive.committed_position(shard)
        return committed is None or archive.stream_id_key(pending) > archive.stream_id_key(committed)

    mid_batch = kill_repeatedly(lambda: command, kills=20, rng=rng, flow=flow, in_flight=in_flight,
                                min_s=0.2, max_s=0.8)
    flow()
    assert main(["events", "export", "--archive", str(tmp_path / "arc"), "--redis-url", redis_url]) == 0
    ids = [r["event_id"] for r in archived(tmp_path / "arc")]
    assert len(ids) == len(set(ids)) and sorted(ids) == sorted(acked)
    assert client.xlen(STREAM) == 0
    client.close()
    print(f"{len(acked)} events, 20 kills, {mid_batch} inside a batch")
