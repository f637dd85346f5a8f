"""The next training picks up the live catalog: `vitrine catalog export` writes what the
storefront said, `vitrine train --catalog` applies it to the events' items."""

import asyncio

import msgspec
import numpy as np

from server.catalog.store import CatalogStore
from server.settings import RedisSettings
from server.store.connections import Connections
from training.catalog import apply_catalog, read_catalog
from training.synthetic import generate_store
from vitrine.cli import main


async def test_exported_live_catalog_overrides_the_events_metadata(redis_url, tmp_path, capsys):
    log = generate_store(n_items=50, n_users=40, n_events=2_000, seed=1).log
    a, b, c = log.item_ids[:3]
    settings = msgspec.convert({}, RedisSettings)
    conn = Connections.for_settings(redis_url, settings)
    store = CatalogStore(conn.wire, settings)
    await store.update([(a, {"in_stock": False, "stock": 0, "category": "moved/here", "price": 7.5}, []),
                        (b, {"consumable": True, "title": "B"}, []), ("brand-new", {"price": 1.0}, [])])
    await store.hide(c)
    await conn.aclose()
    out = tmp_path / "catalog.jsonl"
    argv = ["catalog", "export", "--out", str(out), "--redis-url", redis_url]
    assert await asyncio.to_thread(main, argv) == 0
    assert "exported 4 live catalog items" in capsys.readouterr().out
    before = {x: log.item_category[log.item_ids.index(x)] for x in (b, c)}
    log = apply_catalog(log, read_catalog(out))
    i, j, k = (log.item_ids.index(x) for x in (a, b, c))
    assert not log.item_in_stock[i] and log.item_category[i] == "moved/here" and log.item_price[i] == 7.5
    assert log.item_consumable[j] and log.item_in_stock[j] and log.item_category[j] == before[b]
    assert not log.item_in_stock[k] and log.item_category[k] == before[c]  # hidden: out of stock
    assert np.isnan(read_catalog(out).price[[x == b for x in read_catalog(out).item_ids].index(True)])


def test_rules_check_names_each_problem(tmp_path, capsys):
    path = tmp_path / "rules.json"
    path.write_text('[{"id": "a", "kind": "boost", "match": {"tag": ["x"]}, "factor": 3},'
                    ' {"id": "b", "kind": "bury", "match": {}, "factor": 0.5}]')
    assert main(["rules", "check", str(path)]) == 1
    assert "rule 1 (b): rules[1].match: must name at least one of" in capsys.readouterr().err
    path.write_text('[{"id": "a", "kind": "boost", "match": {"tag": ["x"]}, "factor": 3}]')
    assert main(["rules", "check", str(path)]) == 0 and "1 rules, all valid" in capsys.readouterr().out
