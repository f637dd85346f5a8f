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


# -- bounds: whatever a shopper sends, their keys and the read's cost stay bounded ---------------

async def test_affinities_are_capped_keeping_the_strongest(open_store):
    store = open_store(affinity_cap=4)  # grows to 5, then back to 4
    strong = [ev(f"p{i}", "i1", "purchase", ts=T0, category="big") for i in range(3)]
    weak = [ev(f"v{i}", "i2", ts=T0 + 1_000 * i, category=f"c{i}") for i in range(10)]
    await store.sessions.ingest(strong + weak, now_ms=T0)
    live = await store.sessions.read(user_id=None, session_id="s1", now_ms=T0 + 10_000)
    assert set(live.category_affinity) == {"big", "c7", "c8", "c9"}
    await store.sessions.ingest([ev("n", "i2", ts=T0 + 20_000, category="new")], now_ms=T0)
    live = await store.sessions.read(user_id=None, session_id="s1", now_ms=T0 + 20_000)
    assert set(live.category_affinity) == {"big", "c7", "c8", "c9", "new"}  # within the bound


async def test_purchases_and_returns_are_capped_dropping_the_least_recent(open_store):
    store = open_store(purchases_cap=4)
    buys = [ev(f"b{i}", f"i{i}", "purchase", ts=T0 + i) for i in range(10)]
    await store.sessions.ingest(buys + [ev("r", "i9", "return", ts=T0 + 20), ev("r0", "i0", "return", ts=T0)],
                                now_ms=T0)
    live = await store.sessions.read(user_id=None, session_id="s1", now_ms=T0)
    assert live.purchased == {"i6", "i7", "i8"} and live.returned == {"i9"}  # i9 bought, then returned
    bought, returned, _, _, bought_at = (store.keys.shopper("{s:s1}")[i] for i in (1, 2, 0, 3, 4))
    assert await store.client.hlen(bought) == 4 and await store.client.hlen(bought_at) == 4
    assert await store.client.smembers(returned) == {b"i9"}


async def test_past_its_budget_a_shoppers_events_reach_the_stream_not_its_live_state(open_store):
    store = open_store(shopper_event_budget=5)
    batch = [ev(f"e{i}", f"i{i}", ts=T0 + i) for i in range(8)]
    result = await store.sessions.ingest(batch, now_ms=T0)
    assert result.accepted == 8 and result.over_budget == 3
    live = await store.sessions.read(user_id=None, session_id="s1", now_ms=T0)
    assert [x[0] for x in live.items] == ["i4", "i3", "i2", "i1", "i0"]
    assert await _stream_len(store) == 8
    again = await store.sessions.ingest(batch, now_ms=T0)  # a retry: recognised on the stream's side
    assert again.accepted == 0 and len(again.duplicates) == 8
    assert await _stream_len(store) == 8
    other = await store.sessions.ingest([ev("e0", "i1", session_id="s2")], now_ms=T0)
    assert other.accepted == 1 and other.over_budget == 0  # the budget is per shopper


async def test_oversized_keys_of_an_earlier_version_are_skipped_by_reads_and_dropped_by_writes(open_store):
    store = open_store(affinity_cap=4, purchases_cap=4)
    _, bought, _, aff, _ = store.keys.shopper("{s:s1}")
    await store.client.hset(aff, mapping={f"{p}:{c}": 1 for c in range(500) for p in "st"})
    await store.client.hset(bought, mapping={f"old{i}": 1 for i in range(500)})
    live = await store.sessions.read(user_id=None, session_id="s1", now_ms=T0)
    assert live.category_affinity == {} and live.purchased == frozenset()
    await store.sessions.ingest([ev("a", "i1", "purchase", category="shoes")], now_ms=T0)
    live = await store.sessions.read(user_id=None, session_id="s1", now_ms=T0)
    assert live.category_affinity.keys() == {"shoes"} and live.purchased == {"i1"}


async def test_a_refused_script_call_changes_nothing(open_store):
    """All or nothing: a bad event in the middle of a batch (past the door's validation) or a key
    of the wrong type refuses the whole call before its first write."""
    from server.store.records import StoreUnavailable
    from server.store.scripts import run_scripts
    from server.store.sessions import SHOPPER

    store = open_store()
    tag = "{s:s1}"
    keys = [*store.keys.shopper(tag), store.keys.shopper_ids(tag, 1), store.keys.shopper_ids(tag, 0)]
    head = [600, 50, 1_800_000, 172_800, 32, 40, 200, 250, 2_000]

    def one(n, qty):
        return [f"d{n}".encode(), f"i{n}", "purchase", T0, qty, "shoes", 6.0, b"x"]

    bad = [*head, *one(1, 1), *one(2, 1), *one(3, "1e17"), *one(4, 1)]
    with pytest.raises(StoreUnavailable) as refused:
        await run_scripts(store.sessions.wire, [(SHOPPER, keys, bad)], 1.0)
    assert "script" in str(refused.value) and "1e17" not in str(refused.value)
    assert not [k for k in await store.all_keys() if k.startswith(b"vt:{s:s1}")]

    await store.client.set(keys[2], "not a set")  # `returned` of the wrong type
    with pytest.raises(StoreUnavailable):
        await store.sessions.ingest([ev("p", "i1", "purchase")], now_ms=T0)
    assert sorted(k for k in await store.all_keys() if k.startswith(b"vt:{s:s1}")) == [keys[2].encode()]
    await store.client.delete(keys[2])  # repaired: the retry counts the purchase once
    retry = await store.sessions.ingest([ev("p", "i1", "purchase")], now_ms=T0)
    assert retry.accepted == 1
    assert (await store.sessions.read(user_id=None, session_id="s1", now_ms=T0)).purchased == {"i1"}
    assert await _stream_len(store) == 1


async def test_the_stream_stays_near_its_cap_and_counts_what_the_cap_dropped(open_store):
    store = open_store(stream_maxlen=1_000, shards=1)
    for b in range(6):
        await store.sessions.ingest([ev(f"e{b}-{i}", session_id=f"s{i}") for i in range(500)], now_ms=T0)
    length = await store.client.xlen(store.keys.stream(0))
    assert 1_000 <= length <= 1_000 + 100  # trimmed by whole nodes (stream-node-max-entries)
    assert int(await store.client.get(store.keys.stream_dropped(0))) == 3_000 - length
