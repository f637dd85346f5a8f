"""The session store's contract, against a real Redis."""

import redis.asyncio as aioredis
from redis.crc import key_slot

from models.events import Event
from server.embedded_redis import EmbeddedRedis
from server.keys import Keys
from server.redis_client import connect
from server.session_store import SessionStore, StoreConfig, StoreUnavailable

T0 = 1_800_000_000_000


def ev(event_id, item="i1", type="view", ts=T0, category="shoes", user_id=None, session_id="s1", qty=1):
    return Event(event_id=event_id, session_id=session_id, type=type, ts=ts, item_id=item,
                 category=category, user_id=user_id, quantity=qty)


async def _store(url, **cfg):
    return SessionStore(connect(url, timeout_s=1.0), StoreConfig(**cfg))


async def test_ingest_then_read_round_trip(redis_url):
    store = await _store(redis_url)
    result = await store.ingest([ev("a", "i1", ts=T0), ev("b", "i2", "add_to_cart", T0 + 1),
                                 ev("c", "i2", "purchase", T0 + 2)], now_ms=T0 + 2)
    assert result.accepted == 3 and result.duplicates == []
    live = await store.read(user_id=None, session_id="s1", now_ms=T0 + 2)
    assert [x[:2] for x in live.items] == [("i2", "purchase"), ("i2", "add_to_cart"), ("i1", "view")]
    assert live.purchased == {"i2"} and live.returned == frozenset()
    assert live.category_affinity["shoes"] > 9.9  # 1 + 3 + 6, barely decayed
    await store.redis.aclose()


async def test_retried_batch_is_not_double_counted(redis_url):
    store = await _store(redis_url)
    batch = [ev("a", "i1", "purchase"), ev("b", "i2")]
    assert (await store.ingest(batch, now_ms=T0)).accepted == 2
    again = await store.ingest(batch + [ev("c", "i3")], now_ms=T0)
    assert again.accepted == 1 and again.duplicates == ["a", "b"]
    live = await store.read(user_id=None, session_id="s1", now_ms=T0)
    assert len(live.items) == 3
    assert await store.redis.xlen(store.keys.stream) == 3
    rows = dict(await store.trending(category=None, n=10, now_ms=T0))
    assert rows["i1"] == 6.0 and rows["i2"] == 1.0  # purchase weight once, not twice
    await store.redis.aclose()


async def test_returns_cancel_purchases(redis_url):
    store = await _store(redis_url)
    await store.ingest([ev("a", "i1", "purchase", qty=2), ev("b", "i1", "return", T0 + 1),
                        ev("c", "i2", "purchase"), ev("d", "i2", "return", T0 + 1)], now_ms=T0)
    live = await store.read(user_id=None, session_id="s1", now_ms=T0)
    assert live.purchased == {"i1"}  # one of two returned: still bought
    assert live.returned == {"i1", "i2"}
    await store.redis.aclose()


async def test_recent_is_capped_newest_first_and_keys_expire(redis_url):
    store = await _store(redis_url, recent_cap=5, session_ttl_s=600)
    await store.ingest([ev(f"e{i}", f"i{i}", ts=T0 + i) for i in range(12)], now_ms=T0)
    live = await store.read(user_id=None, session_id="s1", now_ms=T0)
    assert [x[0] for x in live.items] == ["i11", "i10", "i9", "i8", "i7"]
    for key in store.keys.shopper("{s:s1}"):
        if await store.redis.exists(key):  # no return was recorded, so no `returned` set
            assert 0 < await store.redis.ttl(key) <= 600
    await store.redis.aclose()


async def test_affinity_decays_with_its_half_life(redis_url):
    store = await _store(redis_url, affinity_half_life_s=60)
    await store.ingest([ev("a", "i1", ts=T0, category="shoes")], now_ms=T0)
    fresh = (await store.read(user_id=None, session_id="s1", now_ms=T0)).category_affinity["shoes"]
    later = (await store.read(user_id=None, session_id="s1", now_ms=T0 + 120_000)).category_affinity
    assert fresh == 1.0 and abs(later["shoes"] - 0.25) < 1e-9
    await store.ingest([ev("b", "i2", ts=T0 + 60_000, category="shoes")], now_ms=T0)
    assert abs((await store.read(user_id=None, session_id="s1", now_ms=T0 + 60_000))
               .category_affinity["shoes"] - 1.5) < 1e-9
    await store.redis.aclose()


async def test_trending_orders_by_decayed_weight_overall_and_per_category(redis_url):
    store = await _store(redis_url, trending_half_life_s=3600)
    await store.ingest([ev("a", "i1", category="shoes"), ev("b", "i2", "purchase", category="bags"),
                        ev("c", "i3", "add_to_cart", category="shoes", session_id="s2")], now_ms=T0)
    assert [i for i, _ in await store.trending(category=None, n=3, now_ms=T0)] == ["i2", "i3", "i1"]
    assert [i for i, _ in await store.trending(category="shoes", n=3, now_ms=T0)] == ["i3", "i1"]
    later = dict(await store.trending(category=None, n=3, now_ms=T0 + 3_600_000))
    assert abs(later["i2"] - 3.0) < 1e-6  # one half-life later
    await store.redis.aclose()


def test_a_shoppers_keys_share_one_cluster_slot():
    keys = Keys("vt")
    for tag in (keys.shopper_tag("u42", "s1"), keys.shopper_tag(None, "s1")):
        assert len({key_slot(k.encode()) for k in keys.shopper(tag)}) == 1
    assert keys.shopper_tag("u42", "s1") == "{u:u42}"
    globals_ = [keys.stream, keys.dedup("e1"), keys.trending(3), keys.trending(3, "shoes")]
    assert len({key_slot(k.encode()) for k in globals_}) == 1


async def test_unavailable_when_redis_dies_and_acknowledged_events_survive(tmp_path):
    server = EmbeddedRedis(tmp_path).start()
    store = await _store(server.url)
    await store.ingest([ev("a", "i1", "purchase")], now_ms=T0)
    server.kill()
    for call in (store.read(user_id=None, session_id="s1", now_ms=T0),
                 store.ingest([ev("b", "i2")], now_ms=T0),
                 store.trending(category=None, n=3, now_ms=T0)):
        try:
            await call
            raise AssertionError("expected StoreUnavailable")
        except StoreUnavailable:
            pass
    assert not await store.ping()
    server.start()
    live = await store.read(user_id=None, session_id="s1", now_ms=T0)
    assert live.purchased == {"i1"}
    assert await store.redis.xlen(store.keys.stream) == 1
    await store.redis.aclose()
    server.stop()


async def test_export_writes_each_event_once_and_trims(redis_url, tmp_path):
    from server.export import export_events
    from training.readers import read_events

    store = await _store(redis_url)
    await store.ingest([ev("a", "i1", user_id="u1"), ev("b", "i2", "purchase", T0 + 5, user_id="u1")],
                       now_ms=T0)
    client = aioredis.Redis.from_url(redis_url)
    path, n = await export_events(client, tmp_path)
    assert n == 2 and await client.xlen(store.keys.stream) == 0
    assert (await export_events(client, tmp_path)) == (None, 0)
    log, report = read_events(path)  # the trainer reads exactly what the server exports
    assert report.rows_kept == 2 and log.user_ids == ["u1"] and sorted(log.item_ids) == ["i1", "i2"]
    await client.aclose()
    await store.redis.aclose()
