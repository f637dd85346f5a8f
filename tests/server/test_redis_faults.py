"""The session store when Redis dies: fail fast with StoreUnavailable, lose nothing acknowledged."""

import pytest

from models.events import Event
from server.store.embedded import EmbeddedRedis
from server.store.records import StoreUnavailable
from tests.stores import Stores

T0 = 1_800_000_000_000


def ev(event_id: str, item: str, type: str = "view") -> Event:
    return Event(event_id=event_id, session_id="s1", type=type, ts=T0, item_id=item, category="shoes")


@pytest.fixture
def server(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis").start()
    yield server
    server.stop()


async def test_a_killed_redis_is_unavailable_and_acknowledged_events_survive_the_restart(server):
    stores = Stores.open(server.url)
    store = stores.sessions
    acked = [ev(f"e{i}", f"i{i}", "purchase" if i % 2 else "view") for i in range(20)]
    assert (await store.ingest(acked, now_ms=T0)).accepted == 20
    server.kill()  # SIGKILL: no shutdown, no final AOF flush

    with pytest.raises(StoreUnavailable):
        await store.read(user_id=None, session_id="s1", now_ms=T0)
    with pytest.raises(StoreUnavailable):
        await store.ingest([ev("lost", "i99")], now_ms=T0)
    with pytest.raises(StoreUnavailable):
        await stores.trending.top(category=None, n=3, now_ms=T0)
    assert not await stores.conn.ping()

    server.start()  # same data dir: replays the append-only file
    assert await stores.conn.ping()
    live = await store.read(user_id=None, session_id="s1", now_ms=T0)
    assert {item for item, _, _ in live.items} == {f"i{i}" for i in range(20)}
    assert live.purchased == {f"i{i}" for i in range(1, 20, 2)}
    assert await stores.client.xlen(store.keys.stream(0)) == 20
    # The unacknowledged event is retried by the client and accepted now; the acked ones
    # are recognised (the restart emptied the script cache: reloaded transparently).
    retry = await store.ingest([ev("lost", "i99"), acked[0]], now_ms=T0)
    assert retry.accepted == 1 and retry.duplicates == ["e0"]
    await stores.aclose()


async def test_a_redis_that_stops_answering_times_out_instead_of_hanging(server):
    import os
    import signal

    stores = Stores.open(server.url, timeout_ms=200)
    store = stores.sessions
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
    await stores.aclose()
