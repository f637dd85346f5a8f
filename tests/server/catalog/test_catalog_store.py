"""The live catalog's and the rules' Redis stores against every Redis flavour (embedded, TCP
with a password, a 3-master cluster): atomic merges, the change log, snapshots, versions."""

import asyncio

import msgspec
import pytest

from models.catalog import ItemRecord
from server.catalog.store import CatalogStore, Doorbell
from server.merchandising.rules import parse_rules
from server.merchandising.store import RulesStore
from server.settings import RedisSettings
from server.store.connections import Connections


@pytest.fixture
async def stores(redis_target):
    settings = msgspec.convert({"cluster": redis_target.cluster}, RedisSettings)
    conn = Connections.for_settings(redis_target.url, settings)
    yield CatalogStore(conn.wire, settings), RulesStore(conn.wire, settings), conn
    await conn.aclose()


async def test_updates_merge_field_by_field_and_log_the_ids(stores):
    catalog, _, _ = stores
    start = await catalog.head()
    await catalog.update([("a", {"price": 3.5, "tags": [], "attributes": {}}, []),
                          ("b", {"brand": "acme"}, [])])
    await catalog.update([("a", {"title": "A"}, ["price"])])
    current = await catalog.get(["a", "b", "c"])
    assert current == {"a": ItemRecord(title="A", tags=[], attributes={}), "b": ItemRecord(brand="acme"),
                       "c": None}
    changes = await catalog.changes(start)
    assert changes.ids == ["a", "b", "a"] and not changes.gap
    assert (await catalog.changes(changes.position)).ids == []
    await catalog.update([("b", {}, ["brand"])])  # nothing left: the record goes
    assert (await catalog.get(["b"]))["b"] is None


async def test_concurrent_writers_of_one_item_keep_each_others_fields(stores):
    catalog, _, _ = stores
    fields = {"price": 1.0, "brand": "b", "title": "t", "stock": 4, "consumable": True}
    await asyncio.gather(*[catalog.update([("x", {f: v}, [])]) for f, v in fields.items()])
    assert (await catalog.get(["x"]))["x"] == ItemRecord(**fields)


async def test_a_snapshot_holds_every_record_and_where_to_follow_from(stores):
    catalog, _, _ = stores
    await catalog.update([(f"i{n}", {"price": float(n)}, []) for n in range(2_500)])  # > one scan batch
    await catalog.hide("i7")
    position, records = await catalog.snapshot()
    assert len(records) == 2_500 and records["i7"] == ItemRecord(price=7.0, hidden=True)
    assert position == await catalog.head() and (await catalog.changes(position)).ids == []


async def test_a_log_trimmed_past_a_position_is_a_gap(stores):
    catalog, _, conn = stores
    await catalog.update([("a", {"price": 1.0}, [])])
    old = await catalog.head()
    for n in range(3):
        await catalog.update([(f"b{n}", {"price": 1.0}, [])])
    await conn.client.xtrim(catalog.keys.catalog_log, maxlen=1, approximate=False)
    assert (await catalog.changes(old)).gap
    assert not (await catalog.changes(await catalog.head())).gap


async def test_rules_are_versioned_and_a_file_replaces_its_own_rules_only(stores):
    _, rules, _ = stores
    assert await rules.version() == 0
    a, b, c = parse_rules([{"id": "a", "kind": "exclude", "match": {"tag": ["x"]}},
                           {"id": "b", "kind": "pin", "item_id": "i1", "position": 1},
                           {"id": "c", "kind": "out_of_stock", "hide": False}])
    v1 = await rules.put([a])
    v2 = await rules.apply_file("d1", [b, c], [])
    version, stored = await rules.load()
    assert v2 > v1 and version == v2 and sorted(stored) == ["a", "b", "c"]
    digest, ids = await rules.file_state()
    assert digest == "d1" and ids == ["b", "c"]
    await rules.apply_file("d2", [c], ids)  # b left the file: removed; a (from the API) stays
    assert sorted((await rules.load())[1]) == ["a", "c"]
    assert await rules.delete("a") is not None and await rules.delete("a") is None


async def test_the_doorbell_rings_when_the_log_grows(stores, redis_target):
    catalog, _, _ = stores
    bell = Doorbell(redis_target.url, catalog.keys, cluster=redis_target.cluster, block_s=0.2)
    try:
        head = await catalog.head()
        assert await bell.wait(head) is False  # nothing new: back after the block time
        waiting = asyncio.create_task(bell.wait(head))
        await asyncio.sleep(0.05)
        await catalog.update([("a", {"price": 1.0}, [])])
        assert await asyncio.wait_for(waiting, 1.0) is True
        assert await bell.wait(head) is True  # already there: at once
    finally:
        await bell.aclose()
