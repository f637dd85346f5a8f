"""The customer side of the write scripts on every Redis flavour: the purchase log and linked
sessions written once per event, the trigger rules' signals (reported again on a retry), the
cart timer, and a refused shopper's events leaving no key about them."""

import msgspec
import pytest

from models.events import Event
from server.customers.records import ConsentRecord, parse_purchases
from server.customers.store import CustomerStore
from server.settings import CustomersSettings
from server.store.keys import Keys
from tests.stores import Stores

T0 = 1_800_000_000_000


def ev(event_id, item="i1", type="view", ts=T0, user_id=None, session_id="s1", price=None, qty=1):
    return Event(event_id=event_id, session_id=session_id, type=type, ts=ts, item_id=item, category="c",
                 user_id=user_id, price=price, quantity=qty)


@pytest.fixture
async def store(redis_target):
    stores = Stores.open(redis_target.url, cluster=redis_target.cluster)
    yield stores
    await stores.aclose()


async def test_purchases_are_logged_once_with_their_amount(store):
    batch = [ev("a", "i1", "purchase", user_id="u1", price=12.5, qty=2),
             ev("b", "i2", "purchase", T0 + 1, user_id="u1", price=None), ev("c", "i3", user_id="u1")]
    await store.sessions.ingest(batch, now_ms=T0, prices=lambda item: 4.0)
    again = await store.sessions.ingest(batch, now_ms=T0, prices=lambda item: 4.0)
    assert again.accepted == 0
    log = parse_purchases(await store.client.zrange(store.keys.purchase_log("{u:u1}"), 0, -1))
    assert log == [(T0, "i1", 25.0), (T0 + 1, "i2", 4.0)]  # the catalog price when the event has none
    after = await store.client.zrangebyscore(store.keys.purchase_log("{u:u1}"), f"({T0}", "+inf")
    assert parse_purchases(after) == [(T0 + 1, "i2", 4.0)]  # what the read asks: since the model


async def test_a_customers_sessions_are_linked(store):
    await store.sessions.ingest([ev("a", user_id="u1", session_id="s1"),
                                 ev("b", user_id="u1", session_id="s2", ts=T0 + 5)], now_ms=T0)
    linked = await store.client.zrange(store.keys.linked_sessions("{u:u1}"), 0, -1, withscores=True)
    assert linked == [(b"s1", T0), (b"s2", T0 + 5)]


async def test_views_above_the_price_signal_once_and_again_on_a_retry(store):
    views = [ev(f"v{n}", "dear", ts=T0 + n, price=150.0) for n in range(4)]
    first = await store.sessions.ingest(views[:2], now_ms=T0)
    assert first.signals == []
    third = await store.sessions.ingest(views[2:3], now_ms=T0)
    assert [(s.kind, s.item, s.event) for s in third.signals] == [("views", "dear", 0)]
    assert third.signals[0].episode == f"dear:{T0}"
    retry = await store.sessions.ingest(views[2:3], now_ms=T0)  # unacknowledged: sent again
    assert retry.accepted == 0 and retry.signals == third.signals
    fourth = await store.sessions.ingest(views[3:], now_ms=T0)
    assert fourth.signals == []  # the count passed the threshold once
    cheap = await store.sessions.ingest([ev(f"w{n}", "cheap", price=20.0) for n in range(5)], now_ms=T0)
    assert cheap.signals == []


async def test_an_item_in_the_cart_does_not_signal_and_starts_a_timer(store):
    result = await store.sessions.ingest(
        [ev("c", "dear", "add_to_cart", session_id="s9", price=150.0)] +
        [ev(f"v{n}", "dear", ts=T0 + n, session_id="s9", price=150.0) for n in range(3)], now_ms=T0)
    assert result.signals == []
    shard = store.keys.shard_of("{s:s9}")
    due = await store.client.zscore(store.keys.timers(shard), "{s:s9}")
    assert due == T0 + 1_800_000


async def test_a_signed_in_shoppers_new_session_is_a_visit(store):
    result = await store.sessions.ingest([ev("a", user_id="u1", session_id="s1"),
                                          ev("b", user_id="u1", session_id="s1", ts=T0 + 1),
                                          ev("c", user_id="u1", session_id="s2", ts=T0 + 2)], now_ms=T0)
    assert [(s.kind, s.episode, s.event) for s in result.signals] == [("visit", "s1", 0), ("visit", "s2", 2)]
    anonymous = await store.sessions.ingest([ev("d", session_id="s3")], now_ms=T0)
    assert anonymous.signals == []


async def test_a_refused_shopper_is_counted_in_trending_only(store):
    customers = CustomerStore(store.conn.wire, store.client, store.settings, CustomersSettings())
    await customers.set_consent([Keys.shopper_tag("u1", None)], ConsentRecord(False, T0), now_ms=T0)
    result = await store.sessions.ingest([ev("a", "i1", "purchase", user_id="u1", price=3.0),
                                          ev("b", "i1", "add_to_cart", user_id="u1")], now_ms=T0)
    assert result.accepted == 2 and result.not_stored == {0, 1} and result.signals == []
    keys = {k.decode() for k in await store.all_keys()}
    assert not [k for k in keys if "u1" in k and not k.endswith(":consent")]
    assert sum([await store.client.xlen(store.keys.stream(n)) for n in range(store.keys.shards)]) == 0
    assert [k for k in keys if ":trend:" in k]
    assert await store.client.zcard(store.keys.timers(store.keys.shard_of("{u:u1}"))) == 0


async def test_the_logs_are_bounded(redis_target):
    stores = Stores.open(redis_target.url, cluster=redis_target.cluster)
    small = CustomersSettings(purchase_log_cap=3, linked_sessions_cap=4)
    from server.store.sessions import SessionStore

    sessions = SessionStore(stores.conn.wire, stores.settings, small)
    try:
        await sessions.ingest([ev(f"p{n}", f"i{n}", "purchase", T0 + n, user_id="u1", session_id=f"s{n}",
                                  price=1.0) for n in range(10)], now_ms=T0)
        log = parse_purchases(await stores.client.zrange(stores.keys.purchase_log("{u:u1}"), 0, -1))
        assert [x[1] for x in log] == ["i7", "i8", "i9"]
        linked = await stores.client.zrange(stores.keys.linked_sessions("{u:u1}"), 0, -1)
        assert len(linked) <= 5 and b"s9" in linked
    finally:
        await stores.aclose()


def test_purchase_members_decode_as_written():
    raw = msgspec.msgpack.encode((T0, "i1", 2.5, "abcdef"))
    assert parse_purchases([raw, b"junk"]) == [(T0, "i1", 2.5)]


async def test_a_signed_in_shoppers_keys_stay_within_the_documented_bound(redis_url):
    """10,000 maximal events of one customer, each from a new 128-character session, every item
    and category known, prices above the view rule's: their keys, customer keys included, stay
    within docs/redis.md's 512 KiB."""
    from tests.server.test_hardening import SHOPPER_BOUND_BYTES, maximal_events

    stores = Stores.open(redis_url, stream_maxlen=5_000, shards=1, timeout_ms=5_000)
    user = "u" * 128
    try:
        for b in range(20):
            batch = [msgspec.structs.replace(e, user_id=user, session_id=f"{e.event_id[:8]}" + "s" * 120)
                     for e in maximal_events(500, 500 * b)]
            assert (await stores.sessions.ingest(batch, now_ms=T0)).accepted == 500
        keys = [k for k in await stores.all_keys() if k.startswith(b"vt:{u:" + user.encode())]
        sizes = {k.decode().rsplit(":", 1)[-1]: await stores.client.memory_usage(k, samples=0) for k in keys}
        print(f"\nmemory: a customer's keys after 10,000 maximal events from 10,000 sessions "
              f"{sum(sizes.values()):,} B {sizes}")
        assert {"plog", "trig", "sessions"} <= set(sizes)
        assert sum(sizes.values()) <= SHOPPER_BOUND_BYTES
    finally:
        await stores.aclose()
