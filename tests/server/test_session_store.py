"""The session store's contract, against a real Redis."""

from redis.crc import key_slot

from models.events import Event
from server.keys import Keys
from server.session_store import LiveSession, SessionStore, StoreConfig

T0 = 1_800_000_000_000


def ev(event_id, item="i1", type="view", ts=T0, category="shoes", user_id=None, session_id="s1", qty=1):
    return Event(event_id=event_id, session_id=session_id, type=type, ts=ts, item_id=item,
                 category=category, user_id=user_id, quantity=qty)


async def _store(url, **cfg):
    return SessionStore.connect(url, StoreConfig(**cfg))


async def test_ingest_then_read_round_trip(redis_url):
    store = await _store(redis_url)
    result = await store.ingest([ev("a", "i1", ts=T0), ev("b", "i2", "add_to_cart", T0 + 1),
                                 ev("c", "i2", "purchase", T0 + 2)], now_ms=T0 + 2)
    assert result.accepted == 3 and result.duplicates == []
    live = await store.read(user_id=None, session_id="s1", now_ms=T0 + 2)
    assert [x[:2] for x in live.items] == [("i2", "purchase"), ("i2", "add_to_cart"), ("i1", "view")]
    assert live.purchased == {"i2"} and live.returned == frozenset()
    assert live.category_affinity["shoes"] > 9.9  # 1 + 3 + 6, barely decayed
    await store.aclose()


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
    await store.aclose()


async def test_returns_cancel_purchases(redis_url):
    store = await _store(redis_url)
    await store.ingest([ev("a", "i1", "purchase", qty=2), ev("b", "i1", "return", T0 + 1),
                        ev("c", "i2", "purchase"), ev("d", "i2", "return", T0 + 1)], now_ms=T0)
    live = await store.read(user_id=None, session_id="s1", now_ms=T0)
    assert live.purchased == {"i1"}  # one of two returned: still bought
    assert live.returned == {"i1", "i2"}
    await store.aclose()


async def test_recent_is_capped_newest_first_and_keys_expire(redis_url):
    store = await _store(redis_url, recent_cap=5, session_ttl_s=600)
    await store.ingest([ev(f"e{i}", f"i{i}", ts=T0 + i) for i in range(12)], now_ms=T0)
    live = await store.read(user_id=None, session_id="s1", now_ms=T0)
    assert [x[0] for x in live.items] == ["i11", "i10", "i9", "i8", "i7"]
    for key in store.keys.shopper("{s:s1}"):
        if await store.redis.exists(key):  # no return was recorded, so no `returned` set
            assert 0 < await store.redis.ttl(key) <= 600
    await store.aclose()


async def test_affinity_decays_with_its_half_life(redis_url):
    store = await _store(redis_url, affinity_half_life_s=60)
    await store.ingest([ev("a", "i1", ts=T0, category="shoes")], now_ms=T0)
    fresh = (await store.read(user_id=None, session_id="s1", now_ms=T0)).category_affinity["shoes"]
    later = (await store.read(user_id=None, session_id="s1", now_ms=T0 + 120_000)).category_affinity
    assert fresh == 1.0 and abs(later["shoes"] - 0.25) < 1e-9
    await store.ingest([ev("b", "i2", ts=T0 + 60_000, category="shoes")], now_ms=T0)
    assert abs((await store.read(user_id=None, session_id="s1", now_ms=T0 + 60_000))
               .category_affinity["shoes"] - 1.5) < 1e-9
    await store.aclose()


async def test_trending_orders_by_decayed_weight_overall_and_per_category(redis_url):
    store = await _store(redis_url, trending_half_life_s=3600)
    await store.ingest([ev("a", "i1", category="shoes"), ev("b", "i2", "purchase", category="bags"),
                        ev("c", "i3", "add_to_cart", category="shoes", session_id="s2")], now_ms=T0)
    assert [i for i, _ in await store.trending(category=None, n=3, now_ms=T0)] == ["i2", "i3", "i1"]
    assert [i for i, _ in await store.trending(category="shoes", n=3, now_ms=T0)] == ["i3", "i1"]
    later = dict(await store.trending(category=None, n=3, now_ms=T0 + 3_600_000))
    assert abs(later["i2"] - 3.0) < 1e-6  # one half-life later
    await store.aclose()


def test_a_shoppers_keys_share_one_cluster_slot():
    keys = Keys("vt")
    for tag in (keys.shopper_tag("u42", "s1"), keys.shopper_tag(None, "s1"),
                keys.shopper_tag("odd}id{", None)):
        shopper_keys = keys.shopper(tag) + [keys.shopper_ids(tag, 7), keys.shopper_ids(tag, 6)]
        assert len({key_slot(k.encode()) for k in shopper_keys}) == 1
    assert keys.shopper_tag("u42", "s1") == "{u:u42}"
    globals_ = [keys.stream, keys.dedup("e1"), keys.trending(3), keys.trending(3, "shoes"),
                keys.export_position, keys.export_lock]
    assert len({key_slot(k.encode()) for k in globals_}) == 1


async def test_every_key_an_ingest_writes_is_in_the_shoppers_slot_or_the_global_one(redis_url):
    store = await _store(redis_url)
    await store.ingest([ev("a", "i1", "purchase", user_id="u1"), ev("b", "i2", "return", user_id="u1"),
                        ev("c", "i3", session_id="anon")], now_ms=T0)
    keys = Keys("vt")
    slots = {key_slot(k) for k in await store.redis.keys("*")}
    expected = {key_slot(keys.stream.encode()), key_slot(keys.shopper("{u:u1}")[0].encode()),
                key_slot(keys.shopper("{s:anon}")[0].encode())}
    assert slots == expected
    await store.aclose()


async def test_unknown_shopper_reads_empty(redis_url):
    store = await _store(redis_url)
    assert await store.read(user_id="nobody", session_id="s0", now_ms=T0) == LiveSession(
        items=[], purchased=frozenset(), returned=frozenset(), category_affinity={})
    assert await store.trending(category="none", n=5, now_ms=T0) == []
    await store.aclose()


async def test_a_known_user_is_keyed_by_user_across_sessions(redis_url):
    store = await _store(redis_url)
    await store.ingest([ev("a", "i1", user_id="u1", session_id="phone"),
                        ev("b", "i2", user_id="u1", session_id="laptop", ts=T0 + 1)], now_ms=T0)
    live = await store.read(user_id="u1", session_id="tablet", now_ms=T0)
    assert [x[0] for x in live.items] == ["i2", "i1"]
    assert (await store.read(user_id=None, session_id="phone", now_ms=T0)).items == []
    await store.aclose()


async def test_category_views_feed_affinity_not_recent_items(redis_url):
    store = await _store(redis_url)
    await store.ingest([Event(event_id="a", session_id="s1", type="category_view", ts=T0, category="bags"),
                        ev("b", "i1", "remove_from_cart", category="shoes")], now_ms=T0)
    live = await store.read(user_id=None, session_id="s1", now_ms=T0)
    assert live.items == [] and live.category_affinity == {"bags": 1.0}
    assert live.purchased == frozenset()
    await store.aclose()


async def test_read_and_ingest_are_one_command_each_on_the_wire(redis_url):
    store = await _store(redis_url)
    await store.ingest([ev("warm")], now_ms=T0)  # scripts loaded
    await store.read(user_id=None, session_id="s1", now_ms=T0)

    async def calls() -> dict[str, int]:
        info = await store.redis.info("commandstats")
        return {k.removeprefix("cmdstat_"): v["calls"] for k, v in info.items()}

    before = await calls()
    await store.read(user_id="u1", session_id="s1", now_ms=T0)
    await store.ingest([ev("a", user_id="u1"), ev("b", session_id="s2")], now_ms=T0)
    after = await calls()
    # One EVALSHA to read; per ingest one per shopper plus one global, and no SCRIPT EXISTS
    # (redis-py's pipeline would send one first: a second round trip).
    assert after["evalsha"] - before["evalsha"] == 1 + 3
    assert after.get("script", 0) == before.get("script", 0)
    await store.aclose()


async def test_scripts_are_reloaded_after_a_script_flush_and_nothing_is_lost(redis_url):
    store = await _store(redis_url)
    await store.ingest([ev("a", "i1")], now_ms=T0)
    await store.redis.script_flush()
    result = await store.ingest([ev("a", "i1"), ev("b", "i2")], now_ms=T0)
    assert result.accepted == 1 and result.duplicates == ["a"]
    await store.redis.script_flush()
    assert [x[0] for x in (await store.read(user_id=None, session_id="s1", now_ms=T0)).items] == ["i2", "i1"]
    await store.aclose()


async def test_retry_is_recognised_across_a_dedup_bucket_boundary(redis_url):
    store = await _store(redis_url, dedup_ttl_s=100)
    first = T0 + 99_000 - T0 % 100_000  # 1 s before a bucket ends
    await store.ingest([ev("a", "i1", "purchase", qty=1)], now_ms=first)
    retry = await store.ingest([ev("a", "i1", "purchase", qty=1)], now_ms=first + 2_000)
    assert retry.accepted == 0 and retry.duplicates == ["a"]
    bought = store.keys.shopper("{s:s1}")[1]
    assert await store.redis.hget(bought, "i1") == b"1"
    ids = [k.decode() for k in await store.redis.keys("vt:{s:s1}:ids:*")]
    assert len(ids) == 1 and 0 < await store.redis.ttl(ids[0]) <= 200  # bounded, unlike the session
    await store.aclose()


async def test_trending_sets_stay_bounded(redis_url):
    store = await _store(redis_url, trending_cap=20)
    await store.ingest([ev(f"e{i}", f"i{i}", category="shoes", session_id=f"s{i}") for i in range(60)],
                       now_ms=T0)
    for key in await store.redis.keys("vt:{g}:trend:*"):
        assert await store.redis.zcard(key) <= 25  # the cap plus the slack trimmed in bulk
        assert await store.redis.ttl(key) > 0
    assert len(await store.trending(category="shoes", n=100, now_ms=T0)) <= 25
    await store.aclose()
