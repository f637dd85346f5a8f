"""GET /v1/recommendations and friends, end to end on a trained synthetic store."""

import numpy as np

from models import artifact
from tests.server.conftest import event, until


def _model(model_store):
    return artifact.load_current(model_store)


async def _recs(client, **params):
    resp = await client.get("/v1/recommendations", params={"k": 10, **params})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_anonymous_without_signals_gets_popular_or_trending(client, model_store):
    body = await _recs(client, session_id="nobody")
    assert body["rung"] in ("trending", "popular") and len(body["items"]) == 10
    assert body["model_version"] == _model(model_store).version


async def test_anonymous_session_is_personalized_after_three_events(client, model_store, synthetic_store):
    model = _model(model_store)
    style = synthetic_store.item_style
    # Three views within one style block (what a real shopper's session looks like).
    probe = int(np.argmax(model.popularity * model.items.in_stock))
    block = [i for i in np.flatnonzero(style == style[probe]) if model.items.in_stock[i]][:3]
    viewed = [model.items.ids[i] for i in block]
    for n, item in enumerate(viewed):
        await client.post("/v1/events", json=event(f"a{n}", item, session_id="anon-1"))
    body = await _recs(client, session_id="anon-1")
    assert body["rung"] == "session"
    got = [model.item_index[x["item_id"]] for x in body["items"]]
    assert np.mean(style[got] == style[probe]) >= 0.3  # the shopper's style, not the global head
    assert any(x["reason"].startswith("because you") for x in body["items"])


async def test_browsing_a_category_shifts_the_next_top10_to_it(client, model_store):
    model = _model(model_store)
    cats = np.array([c or "" for c in model.items.category])
    base = await _recs(client, session_id="browser")
    # The category least present in the cold list, among those with enough stock.
    counts = {c: int(((cats == c) & model.items.in_stock).sum()) for c in set(cats)}
    category = min((c for c in counts if counts[c] >= 30),
                   key=lambda c: sum(x["category"] == c for x in base["items"]))
    base_share = np.mean([x["category"] == category for x in base["items"]])
    members = [i for i in np.argsort(-model.popularity) if cats[i] == category][:4]
    for n, i in enumerate(members):
        await client.post("/v1/events", json=event(f"b{n}", model.items.ids[i], session_id="browser",
                                                   category=category))
    after = await _recs(client, session_id="browser")
    share = np.mean([x["category"] == category for x in after["items"]])
    assert base_share < 0.5 <= share


async def test_known_user_is_personalized_and_purchases_are_not_recommended_again(client, model_store):
    model = _model(model_store)
    user = model.user_ids[3]
    body = await _recs(client, user_id=user)
    assert body["rung"] == "personalized"
    consumable = model.items.consumable
    top = next(x["item_id"] for x in body["items"] if not consumable[model.item_index[x["item_id"]]])
    resp = await client.post("/v1/events", json=event("p1", top, type="purchase", user_id=user))
    assert (await resp.json())["accepted"] == 1
    after = await _recs(client, user_id=user)
    assert top not in [x["item_id"] for x in after["items"]]


async def test_exclusions_context_and_out_of_stock_are_filtered(client, model_store):
    model = _model(model_store)
    first = await _recs(client, user_id=model.user_ids[5], k=20)
    excluded = [x["item_id"] for x in first["items"][:3]]
    body = await _recs(client, user_id=model.user_ids[5], k=20, exclude=",".join(excluded))
    ids = [x["item_id"] for x in body["items"]]
    assert not set(ids) & set(excluded)
    assert all(model.items.in_stock[model.item_index[i]] for i in ids)
    ctx = model.items.ids[int(np.argmax(model.popularity * model.items.in_stock))]
    product = await _recs(client, placement="product", item_id=ctx)
    assert product["rung"] == "context" and ctx not in [x["item_id"] for x in product["items"]]


async def test_category_placement_and_similar_items(client, model_store):
    model = _model(model_store)
    category = model.items.category[0]
    body = await _recs(client, placement="category", category=category, user_id=model.user_ids[9])
    assert len(body["items"]) == 10 and all(x["category"] == category for x in body["items"])
    assert len({x["item_id"] for x in body["items"]}) == 10
    item = model.items.ids[int(np.argmax(model.popularity * model.items.in_stock))]
    resp = await client.get(f"/v1/items/{item}/similar", params={"k": 5})
    sim = await resp.json()
    assert resp.status == 200 and len(sim["items"]) == 5 and item not in [x["item_id"] for x in sim["items"]]
    resp = await client.get("/v1/items/similar", params=[("item_id", item), ("item_id", model.items.ids[1])])
    assert resp.status == 200 and (await resp.json())["items"][0]["reason"] == "similar to your cart"


async def test_bad_parameters_get_4xx(client):
    for params, status in [({"k": "abc"}, 400), ({"k": 0}, 400), ({"k": 10_000}, 400),
                           ({"placement": "moon"}, 400), ({"category": "no/such"}, 404),
                           ({"user_id": "u" * 500}, 400)]:
        resp = await client.get("/v1/recommendations", params=params)
        assert resp.status == status, params
        assert (await resp.json())["error"] in ("bad_request", "not_found")
    assert (await client.get("/v1/items/nope/similar")).status == 404
    assert (await client.get("/v1/items/similar")).status == 400


async def test_a_placement_without_its_context_answers_from_the_shopper_alone(client):
    """Schema-valid (the document can't tie one parameter to another), so never refused."""
    for placement in ("product", "cart", "category"):
        body = await _recs(client, placement=placement, session_id="nobody")
        assert body["placement"] == placement and body["rung"] in ("trending", "popular")
        assert len(body["items"]) == 10


async def test_trending_reflects_live_events(client, model_store):
    model = _model(model_store)
    tail = [i for i in np.argsort(model.popularity) if model.items.in_stock[i]][:2]
    items = [model.items.ids[i] for i in tail]
    await client.post("/v1/events", json=[event(f"t{n}", items[n % 2], type="purchase", session_id=f"t{n}")
                                          for n in range(6)])
    async def trending():
        body = await (await client.get("/v1/trending", params={"k": 5})).json()
        return body if body["rung"] == "trending" else None

    body = await until(trending)  # the worker's trending lists refresh in the background
    assert body["rung"] == "trending" and {x["item_id"] for x in body["items"][:2]} == set(items)
    # Only two items have live activity: the other three are popular ones, labelled as such.
    assert len(body["items"]) == 5 and len({x["item_id"] for x in body["items"]}) == 5
    assert [x["reason"] for x in body["items"]] == ["trending"] * 2 + ["popular"] * 3
    assert body["items"][1]["score"] > body["items"][2]["score"]


async def test_items_seen_in_the_session_are_not_recommended_back(client, model_store):
    model = _model(model_store)
    first = await _recs(client, session_id="seen-1", k=5)
    viewed = [x["item_id"] for x in first["items"][:3]]
    for n, item in enumerate(viewed):
        await client.post("/v1/events", json=event(f"v{n}", item, session_id="seen-1"))
    after = await _recs(client, session_id="seen-1")
    assert after["rung"] == "session"
    assert not set(viewed) & {x["item_id"] for x in after["items"]}
    assert model.version == after["model_version"]
