"""The live catalog through HTTP: validation, stock and hiding on every worker within 1 s, new
items reaching answers through trending, category pages and similar items, `fields=`."""

import time

import numpy as np
import pytest

from models import artifact
from server.app import create_app
from server.appkeys import CATALOG
from tests.server.conftest import event, make_settings, until

ADMIN = {"Authorization": "Bearer s3cret"}


def _model(model_store):
    return artifact.load_current(model_store)


@pytest.fixture
async def workers(aiohttp_client, model_store, redis_url, tmp_path):
    """Two workers on one Redis (two apps in one process), admin token set, default refresh."""
    settings = make_settings(model_store, redis_url, tmp_path, **{"security.admin_token": "s3cret"})
    return [await aiohttp_client(create_app(settings)) for _ in range(2)]


async def _ids(client, path="/v1/recommendations", **params):
    resp = await client.get(path, params=params)
    assert resp.status == 200, await resp.text()
    return [x["item_id"] for x in (await resp.json())["items"]]


async def _put(client, body, status=200):
    resp = await client.put("/v1/items", json=body, headers=ADMIN)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_items_are_validated_one_by_one(workers):
    a, _ = workers
    body = await _put(a, [{"item_id": "n1", "price": 3}, {"item_id": "n2", "price": -3},
                          {"item_id": "n3", "stock": 0, "in_stock": True}, {"price": 1}, "x"])
    assert body["accepted"] == 1
    assert [(r["index"], r["item_id"]) for r in body["rejected"]] == [(1, "n2"), (2, "n3"), (3, None),
                                                                       (4, None)]
    assert "price" in body["rejected"][0]["error"] and "disagree" in body["rejected"][1]["error"]
    bad = await _put(a, {"items": [{"item_id": "z", "colour": "red"}]}, status=422)
    assert bad["error"] == "invalid_items" and "colour" in bad["rejected"][0]["error"]
    assert (await a.put("/v1/items", json={"item_id": "q"})).status == 401  # admin only
    too_many = await _put(a, [{"item_id": f"b{n}"} for n in range(1_001)], status=413)
    assert too_many["error"] == "payload_too_large"
    assert (await a.put("/v1/items", data=b"{", headers=ADMIN)).status == 400


async def test_out_of_stock_leaves_every_answer_of_every_worker_within_a_second(workers, model_store):
    a, b = workers
    model = _model(model_store)
    user = model.user_ids[2]
    shown = await _ids(b, user_id=user, k=5)
    target = shown[0]
    anchor = model.items.ids[int(np.argmax(model.popularity * model.items.in_stock))]
    placements = [("/v1/recommendations", {"user_id": user, "k": 5}),
                  ("/v1/recommendations", {"placement": "category", "category": model.items.category[
                      model.item_index[target]], "user_id": user, "k": 50}),
                  ("/v1/trending", {"k": 100}),
                  (f"/v1/items/{anchor}/similar", {"k": 100})]
    before = [target in await _ids(b, path, **params) for path, params in placements]
    assert before[0] and before[1]
    started = time.monotonic()
    await _put(a, {"item_id": target, "stock": 0})

    async def gone_everywhere():
        for client in (a, b):
            for path, params in placements:
                if target in await _ids(client, path, **params):
                    return False
        return True

    assert await until(gone_everywhere, timeout_s=3.0, interval_s=0.01)
    elapsed = time.monotonic() - started
    assert elapsed <= 1.0, f"out of stock took {elapsed:.2f} s to reach every answer"
    item = await (await b.get(f"/v1/items/{target}", headers=ADMIN)).json()
    assert item["in_stock"] is False and item["stock"] == 0 and item["live"] == ["in_stock", "stock"]


async def test_a_hidden_item_is_gone_until_put_again(workers, model_store):
    a, b = workers
    model = _model(model_store)
    user = model.user_ids[4]
    target = (await _ids(b, user_id=user, k=3))[0]
    resp = await a.delete(f"/v1/items/{target}", headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["hidden"] is True
    assert await until(lambda: _absent(b, target, user_id=user, k=3), timeout_s=2.0)
    assert (await a.delete("/v1/items/never-heard-of", headers=ADMIN)).status == 404
    await _put(a, {"item_id": target, "title": "back"})
    assert await until(lambda: _present(b, target, user_id=user, k=3), timeout_s=2.0)


async def _absent(client, item, **params):
    return item not in await _ids(client, **params)


async def _present(client, item, **params):
    return item in await _ids(client, **params)


async def test_a_new_item_reaches_trending_category_pages_and_similar_items(workers, model_store):
    a, b = workers
    model = _model(model_store)
    category = model.items.category[0]
    await _put(a, {"item_id": "new-1", "category": category, "price": 9.99, "title": "New one",
                   "image_url": "https://cdn.example/new-1.jpg", "brand": "acme", "tags": ["summer"]})
    await until(lambda: _knows(b, "new-1"))
    assert b.app[CATALOG].knows("new-1") and b.app[CATALOG].knows(model.items.ids[0])
    assert not b.app[CATALOG].knows("no-such-item")
    # Not trained on: no answer shows it yet (no factors, no traffic).
    assert "new-1" not in await _ids(b, "/v1/trending", category=category, k=20)
    # It sells best today; two older items of its category sell too (a list, not a lone item:
    # below half of k live items the ladder answers with popularity).
    same = [x for x, c in zip(model.items.ids, model.items.category, strict=True) if c == category]
    others = same[-2:]
    sales = [("new-1", 8), (others[0], 3), (others[1], 2)]
    await a.post("/v1/events", json=[event(f"{item}-{n}", item, type="purchase", session_id=f"buyer{n}",
                                           category=category) for item, times in sales for n in range(times)])

    async def everywhere():
        trending = await _ids(b, "/v1/trending", category=category, k=4)
        page = await _ids(b, placement="category", category=category, session_id="cold", k=4)
        overall = await _ids(b, "/v1/trending", k=4)
        return trending[0] == "new-1" and page[0] == "new-1" and overall[0] == "new-1"

    assert await until(everywhere, timeout_s=5.0)
    similar = await (await b.get("/v1/items/new-1/similar", params={"k": 5, "fields": "title,price"})).json()
    assert len(similar["items"]) == 5 and all(x["category"] == category for x in similar["items"])
    assert "new-1" not in [x["item_id"] for x in similar["items"]]
    # A product page showing the new item stays in its category.
    page = await (await b.get("/v1/recommendations", params={"placement": "product", "item_id": "new-1",
                                                             "k": 5})).json()
    assert all(x["category"] == category for x in page["items"])
    body = await (await b.get("/v1/trending", params={"category": category, "k": 6,
                                                      "fields": "title,image_url,price,brand,tags"})).json()
    mine = next(x for x in body["items"] if x["item_id"] == "new-1")
    assert mine == {**mine, "title": "New one", "image_url": "https://cdn.example/new-1.jpg", "price": 9.99,
                    "brand": "acme", "tags": ["summer"], "category": category}
    other = next(x for x in body["items"] if x["item_id"] != "new-1")
    assert other["title"] is None and "attributes" not in other  # asked fields only
    bad = await b.get("/v1/trending", params={"fields": "title,colour"})
    assert bad.status == 400 and (await bad.json())["parameter"] == "fields"


async def _knows(client, item_id):
    return client.app[CATALOG].knows(item_id)


async def test_a_new_collection_has_a_page_before_any_traffic(workers):
    a, b = workers
    await _put(a, [{"item_id": f"col-{n}", "category": "new/collection", "price": 10.0 + n}
                   for n in range(3)])
    await until(lambda: _knows(b, "col-2"))
    params = {"placement": "category", "category": "new/collection", "k": 5}
    body = await (await b.get("/v1/recommendations", params=params)).json()
    assert sorted(x["item_id"] for x in body["items"]) == ["col-0", "col-1", "col-2"]
    assert body["rung"] == "popular"
    menu = await (await b.get("/v1/categories")).json()
    assert {"category": "new/collection", "items": 3} in menu["categories"]


async def test_catalog_and_rules_on_every_redis_flavour(aiohttp_client, model_store, redis_target, tmp_path):
    settings = make_settings(model_store, redis_target.url, tmp_path,
                             **{"redis.cluster": redis_target.cluster, "security.admin_token": "s3cret"})
    a, b = [await aiohttp_client(create_app(settings)) for _ in range(2)]
    model = _model(model_store)
    user = model.user_ids[7]
    target = (await _ids(b, user_id=user, k=5))[0]
    pinned = next(x for x, ok in zip(model.items.ids[::-1], model.items.in_stock[::-1], strict=True)
                  if ok and x != target)
    await _put(a, {"item_id": target, "stock": 0})
    resp = await a.put("/v1/admin/rules", headers=ADMIN, json={"id": "pin", "kind": "pin", "position": 1,
                                                               "item_id": pinned})
    assert resp.status == 200

    async def both():
        ids = await _ids(b, user_id=user, k=5)
        return target not in ids and ids[0] == pinned

    assert await until(both, timeout_s=3.0)
