"""The session store when Redis dies: fail fast with StoreUnavailable, lose nothing acknowledged."""

import pytest

from models.events import Event
from server.embedded_redis import EmbeddedRedis
from server.session_store import SessionStore, StoreConfig, StoreUnavailable

T0 = 1_800_000_000_000


def ev(event_id: str, item: str, type: str = "view") -> Event:
    return Event(event_id=event_id, session_id="s1", type=type, ts=T0, item_id=item, category="shoes")


@pytest.fixture
def server(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis").start()
    yield server
    server.stop()


async def test_a_killed_redis_is_unavailable_and_acknowledged_events_survive_the_restart(server):
    store = SessionStore.connect(server.url, StoreConfig())
    acked = [ev(f"e{i}", f"i{i}", "purchase" if i % 2 else "view") for i in range(20)]
    assert (await store.ingest(acked, now_ms=T0)).accepted == 20
    server.kill()  # SIGKILL: no shutdown, no final AOF flush

    with pytest.raises(StoreUnavailable):
        await store.read(user_id=None, session_id="s1", now_ms=T0)
    with pytest.raises(StoreUnavailable):
        await store.ingest([ev("lost", "i99")], now_ms=T0)
    with pytest.raises(StoreUnavailable):
        await store.trending(category=None, n=3, now_ms=T0)
    assert not await store.ping()

    server.start()  # same data dir: replays the append-only file
    assert await store.ping()
    live = await store.read(user_id=None, session_id="s1", now_ms=T0)
    assert {item for item, _, _ in live.items} == {f"i{i}" for i in range(20)}
    assert live.purchased == {f"i{i}" for i in range(1, 20, 2)}
    assert await store.redis.xlen(store.keys.stream) == 20
    # The unacknowledged event is retried by the client and accepted now; the acked ones
    # are recognised (the restart emptied the script cache: reloaded transparently).
    retry = await store.ingest([ev("lost", "i99"), acked[0]], now_ms=T0)
    assert retry.accepted == 1 and retry.duplicates == ["e0"]
    await store.aclose()


async def test_a_redis_that_stops_answering_times_out_instead_of_hanging(server):
    import os
    import signal

    store = SessionStore.connect(server.url, StoreConfig(timeout_s=0.2))
    await store.ingest([ev("a", "i1")], now_ms=T0)
    os.kill(server.process.pid, signal.SIGSTOP)  # alive, accepting nothing: the worst case
    try:
        with pytest.raises(StoreUnavailable):
            await store.read(user_id=None, session_id="s1", now_ms=T0)
        with pytest.raises(StoreUnavailable):
            await store.ingest([ev("b", "i2")], now_ms=T0)
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    # The timed-out write may have landed once Redis resumed; the client's retry of the
    # unacknowledged batch must leave exactly one copy either way.
    await store.ingest([ev("b", "i2")], now_ms=T0)
    live = await store.read(user_id=None, session_id="s1", now_ms=T0)
    assert [x[0] for x in live.items] == ["i2", "i1"]
    await store.aclose()
