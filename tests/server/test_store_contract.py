"""The store contract: sessions and trending against every Redis flavour (the embedded one, TCP
with a password, a 3-master Redis Cluster), through the same code the app runs."""

import pytest
import redis.asyncio
from redis.crc import key_slot

from models.events import Event
from server.store.keys import Keys
from server.store.records import LiveSession
from tests.stores import Stores

T0 = 1_800_000_000_000


def ev(event_id, item="i1", type="view", ts=T0, category="shoes", user_id=None, session_id="s1", qty=1):
    return Event(event_id=event_id, session_id=session_id, type=type, ts=ts, item_id=item,
                 category=category, user_id=user_id, quantity=qty)


@pytest.fixture
async def open_store(redis_target):
    opened = []

    def make(**cfg) -> Stores:
        stores = Stores.open(redis_target.url, cluster=redis_target.cluster, **cfg)
        opened.append(stores)
        return stores

    yield make
    for stores in opened:
        await stores.aclose()


async def _stream_len(store) -> int:
    return sum([await store.client.xlen(store.keys.stream(n)) for n in range(store.keys.shards)])


async def _trending(store, category, n, now_ms):
    return await store.trending.top(category=category, n=n, now_ms=now_ms)


async def test_ingest_then_read_round_trip(open_store):
    store = open_store()
    result = await store.sessions.ingest([ev("a", "i1", ts=T0), ev("b", "i2", "add_to_cart", T0 + 1),
                                 ev("c", "i2", "purchase", T0 + 2)], now_ms=T0 + 2)
    assert result.accepted == 3 and result.duplicates == []
    live = await store.sessions.read(user_id=None, session_id="s1", now_ms=T0 + 2)
    assert [x[:2] for x in live.items] == [("i2", "purchase"), ("i2", "add_to_cart"), ("i1", "view")]
    assert live.purchased == {"i2"} and live.returned == frozenset()
    assert live.category_affinity["shoes"] > 9.9  # 1 + 3 + 6, barely decayed


async def test_retried_batch_is_not_double_counted(open_store):
    store = open_store()
    batch = [ev("a", "i1", "purchase"), ev("b", "i2")]
    assert (await store.sessions.ingest(batch, now_ms=T0)).accepted == 2
    again = await store.sessions.ingest(batch + [ev("c", "i3")], now_ms=T0)
    assert again.accepted == 1 and again.duplicates == ["a", "b"]
    live = await store.sessions.read(user_id=None, session_id="s1", now_ms=T0)
    assert len(live.items) == 3
    assert await _stream_len(store) == 3
    rows = dict(await _trending(store, category=None, n=10, now_ms=T0))
    assert rows["i1"] == 6.0 and rows["i2"] == 1.0  # purchase weight once, not twice


async def test_returns_cancel_purchases(open_store):
    store = open_store()
    await store.sessions.ingest([ev("a", "i1", "purchase", qty=2), ev("b", "i1", "return", T0 + 1),
                        ev("c", "i2", "purchase"), ev("d", "i2", "return", T0 + 1)], now_ms=T0)
    live = await store.sessions.read(user_id=None, session_id="s1", now_ms=T0)
    assert live.purchased == {"i1"}  # one of two returned: still bought
    assert live.returned == {"i1", "i2"}


async def test_recent_is_capped_newest_first_and_keys_expire(open_store):
    store = open_store(recent_cap=5, session_ttl_s=600)
    await store.sessions.ingest([ev(f"e{i}", f"i{i}", ts=T0 + i) for i in range(12)], now_ms=T0)
    live = await store.sessions.read(user_id=None, session_id="s1", now_ms=T0)
    assert [x[0] for x in live.items] == ["i11", "i10", "i9", "i8", "i7"]
    for key in store.keys.shopper("{s:s1}"):
        if await store.client.exists(key):  # no return was recorded, so no `returned` set
            assert 0 < await store.client.ttl(key) <= 600


async def test_affinity_decays_with_its_half_life(open_store):
    store = open_store(affinity_half_life_s=60)
    await store.sessions.ingest([ev("a", "i1", ts=T0, category="shoes")], now_ms=T0)
    fresh = (await store.sessions.read(user_id=None, session_id="s1", now_ms=T0)).category_affinity["shoes"]
    later = (await store.sessions.read(user_id=None, session_id="s1", now_ms=T0 + 120_000)).category_affinity
    assert fresh == 1.0 and abs(later["shoes"] - 0.25) < 1e-9
    await store.sessions.ingest([ev("b", "i2", ts=T0 + 60_000, category="shoes")], now_ms=T0)
    assert abs((await store.sessions.read(user_id=None, session_id="s1", now_ms=T0 + 60_000))
               .category_affinity["shoes"] - 1.5) < 1e-9


async def test_trending_orders_by_decayed_weight_overall_and_per_category(open_store):
    store = open_store(trending_half_life_s=3600)
    await store.sessions.ingest([ev("a", "i1", category="shoes"), ev("b", "i2", "purchase", category="bags"),
                        ev("c", "i3", "add_to_cart", category="shoes", session_id="s2")], now_ms=T0)
    assert [i for i, _ in await _trending(store, category=None, n=3, now_ms=T0)] == ["i2", "i3", "i1"]
    assert [i for i, _ in await _trending(store, category="shoes", n=3, now_ms=T0)] == ["i3", "i1"]
    later = dict(await _trending(store, category=None, n=3, now_ms=T0 + 3_600_000))
    assert abs(later["i2"] - 3.0) < 1e-6  # one half-life later


def test_a_shoppers_keys_share_one_cluster_slot():
    keys = Keys("vt")
    for tag in (keys.shopper_tag("u42", "s1"), keys.shopper_tag(None, "s1"),
                keys.shopper_tag("odd}id{", None)):
        shopper_keys = keys.shopper(tag) + [keys.shopper_ids(tag, 7), keys.shopper_ids(tag, 6)]
        assert len({key_slot(k.encode()) for k in shopper_keys}) == 1
    assert keys.shopper_tag("u42", "s1") == "{u:u42}"
    shard = [keys.stream(3), keys.accepted(3, "{u:u42}", "e1"), keys.trending(3, 17),
             keys.trending(3, 17, "shoes"), keys.export_position(3)]
    assert len({key_slot(k.encode()) for k in shard}) == 1
    assert len({key_slot(Keys("vt", 16).stream(n).encode()) for n in range(16)}) == 16


async def test_every_key_an_ingest_writes_is_in_the_shoppers_slot_or_their_shards(open_store):
    store = open_store()
    await store.sessions.ingest([ev("a", "i1", "purchase", user_id="u1"),
                                 ev("b", "i2", "return", user_id="u1"), ev("c", "i3", session_id="anon")],
                                now_ms=T0)
    keys = store.keys
    slots = {key_slot(k) for k in await store.all_keys()}
    expected = {key_slot(keys.shopper(tag)[0].encode()) for tag in ("{u:u1}", "{s:anon}")}
    expected |= {key_slot(keys.stream(keys.shard_of(tag)).encode()) for tag in ("{u:u1}", "{s:anon}")}
    assert slots == expected


async def test_unknown_shopper_reads_empty(open_store):
    store = open_store()
    assert await store.sessions.read(user_id="nobody", session_id="s0", now_ms=T0) == LiveSession(
        items=[], purchased=frozenset(), returned=frozenset(), category_affinity={})
    assert await _trending(store, category="none", n=5, now_ms=T0) == []


async def test_a_known_user_is_keyed_by_user_across_sessions(open_store):
    store = open_store()
    await store.sessions.ingest([ev("a", "i1", user_id="u1", session_id="phone"),
                        ev("b", "i2", user_id="u1", session_id="laptop", ts=T0 + 1)], now_ms=T0)
    live = await store.sessions.read(user_id="u1", session_id="tablet", now_ms=T0)
    assert [x[0] for x in live.items] == ["i2", "i1"]
    assert (await store.sessions.read(user_id=None, session_id="phone", now_ms=T0)).items == []


async def test_category_views_feed_affinity_not_recent_items(open_store):
    store = open_store()
    await store.sessions.ingest(
        [Event(event_id="a", session_id="s1", type="category_view", ts=T0, category="bags"),
         ev("b", "i1", "remove_from_cart", category="shoes")], now_ms=T0)
    live = await store.sessions.read(user_id=None, session_id="s1", now_ms=T0)
    assert live.items == [] and live.category_affinity == {"bags": 1.0}
    assert live.purchased == frozenset()


async def test_read_and_ingest_are_one_command_each_on_the_wire(open_store, redis_target):
    store = open_store()
    for tag, user, session in (("{u:u1}", "u1", "s1"), ("{s:s2}", None, "s2"), ("{s:s1}", None, "s1")):
        await store.sessions.ingest([ev(f"warm-{tag}", user_id=user, session_id=session)], now_ms=T0)
    await store.sessions.read(user_id=None, session_id="s1", now_ms=T0)  # scripts loaded everywhere

    async def calls() -> dict[str, int]:
        nodes = [store.client]
        if redis_target.cluster:
            await store.client.initialize()
            nodes = [redis.asyncio.Redis(host=n.host, port=n.port) for n in store.client.get_primaries()]
        total: dict[str, int] = {}
        for node in nodes:
            for k, v in (await node.info("commandstats")).items():
                total[k.removeprefix("cmdstat_")] = total.get(k.removeprefix("cmdstat_"), 0) + v["calls"]
            if node is not store.client:
                await node.aclose()
        return total

    before = await calls()
    await store.sessions.read(user_id="u1", session_id="s1", now_ms=T0)
    await store.sessions.ingest([ev("a", user_id="u1"), ev("b", session_id="s2")], now_ms=T0)
    after = await calls()
    # One EVALSHA to read; per ingest one per shopper plus one per stream shard touched, and no
    # SCRIPT EXISTS (redis-py's pipeline would send one first: a second round trip).
    shards = {store.keys.shard_of("{u:u1}"), store.keys.shard_of("{s:s2}")}
    assert after["evalsha"] - before["evalsha"] == 1 + 2 + len(shards)
    assert after.get("script", 0) == before.get("script", 0)
    assert after.get("eval", 0) == before.get("eval", 0)


async def test_scripts_are_reloaded_after_a_script_flush_and_nothing_is_lost(open_store):
    store = open_store()
    await store.sessions.ingest([ev("a", "i1")], now_ms=T0)
    await store.client.script_flush()  # on a cluster: every primary
    result = await store.sessions.ingest([ev("a", "i1"), ev("b", "i2")], now_ms=T0)
    assert result.accepted == 1 and result.duplicates == ["a"]
    await store.client.script_flush()
    live = await store.sessions.read(user_id=None, session_id="s1", now_ms=T0)
    assert [x[0] for x in live.items] == ["i2", "i1"]


async def test_retry_is_recognised_across_a_dedup_bucket_boundary(open_store):
    store = open_store(dedup_ttl_s=100)
    first = T0 + 99_000 - T0 % 100_000  # 1 s before a bucket ends
    await store.sessions.ingest([ev("a", "i1", "purchase", qty=1)], now_ms=first)
    retry = await store.sessions.ingest([ev("a", "i1", "purchase", qty=1)], now_ms=first + 2_000)
    assert retry.accepted == 0 and retry.duplicates == ["a"]
    bought = store.keys.shopper("{s:s1}")[1]
    assert await store.client.hget(bought, "i1") == b"1"
    ids = [k.decode() for k in await store.all_keys() if k.startswith(b"vt:{s:s1}:ids:")]
    assert len(ids) == 1 and 0 < await store.client.ttl(ids[0]) <= 200  # bounded, unlike the session


async def test_trending_sets_stay_bounded(open_store):
    store = open_store(trending_cap=20)
    await store.sessions.ingest([ev(f"e{i}", f"i{i}", category="shoes", session_id=f"s{i}")
                                 for i in range(60)], now_ms=T0)
    trend_keys = [k for k in await store.all_keys() if b":trend:" in k]
    assert trend_keys
    for key in trend_keys:
        assert await store.client.zcard(key) <= 25  # the cap plus the slack trimmed in bulk
        assert await store.client.ttl(key) > 0
    # The cap holds per list and shard: merged, at most the cap per shard.
    assert len(await _trending(store, category="shoes", n=1000, now_ms=T0)) <= 25 * store.keys.shards
