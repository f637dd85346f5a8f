"""Consent (#23): with personalization off, a shopper's following events leave no key and no
value about them in Redis (scanned on every flavour, a Redis Cluster included: the shard's
script reads the consent mark on its own slot), answers are the anonymous ones and say so."""

import numpy as np

from models import artifact
from server.app import create_app
from tests.server.conftest import event, make_settings, until
from tests.server.customers.traces import dump, traces


def _items(model_store, synthetic_store, n=4):
    model = artifact.load_current(model_store)
    style = synthetic_store.item_style
    probe = int(np.argmax(model.popularity * model.items.in_stock))
    block = [i for i in np.flatnonzero(style == style[probe]) if model.items.in_stock[i]]
    return [model.items.ids[i] for i in block[:n]], model


def _trend_keys(d):
    return {k for k in d if b":trend:" in k}


async def test_refused_shopper_leaves_no_trace_and_is_told(aiohttp_client, model_store, redis_target,
                                                           tmp_path, synthetic_store):
    settings = make_settings(model_store, redis_target.url, tmp_path,
                             **{"redis.cluster": redis_target.cluster})
    client = await aiohttp_client(create_app(settings))
    items, model = _items(model_store, synthetic_store)
    # A session and a signed-in customer refuse; another session (default: allowed) doesn't.
    for body in ({"session_id": "anon-refuses", "personalization": False},
                 {"user_id": "cust-refuses", "session_id": "cust-session", "personalization": False}):
        resp = await client.put("/v1/consent", json=body)
        assert resp.status == 200 and (await resp.json())["personalization"] is False
    before = dump(redis_target.url, redis_target.cluster)
    batch = []
    for shopper in ({"session_id": "anon-refuses"}, {"session_id": "cust-session", "user_id": "cust-refuses"},
                    {"session_id": "anon-allows"}):
        tag = shopper.get("user_id") or shopper["session_id"]
        batch += [event(f"{tag}-{n}", item, **shopper) for n, item in enumerate(items)]
        batch += [event(f"{tag}-cart", items[0], type="add_to_cart", **shopper),
                  {**event(f"{tag}-buy", items[1], type="purchase", **shopper), "price": 30.0}]
    resp = await client.post("/v1/events", json=batch)
    assert resp.status == 200 and (await resp.json())["accepted"] == len(batch)

    refused = ["anon-refuses", "cust-refuses", "cust-session"]
    left = [t for t in traces(redis_target.url, redis_target.cluster, refused)
            if b":consent" not in t.encode()]  # their choice itself is kept (written by PUT, not by events)
    assert left == []
    after = dump(redis_target.url, redis_target.cluster)
    new = set(after) - set(before)
    # What their events did write: anonymous trending counts (shared with everyone) and opaque
    # one-day accepted marks (a digest of shopper and event id) that make a retry count once.
    assert _trend_keys(after) and all(b":trend:" in k or b":d:" in k or b"anon-allows" in k for k in new
                                      if not k.endswith((b":stream", b":timers")))
    assert traces(redis_target.url, redis_target.cluster, ["anon-allows"])  # the other one is recorded
    retry = await (await client.post("/v1/events", json=batch)).json()
    assert retry["accepted"] == 0  # still idempotent

    for params in ({"session_id": "anon-refuses"}, {"user_id": "cust-refuses", "session_id": "cust-session"}):
        body = await (await client.get("/v1/recommendations", params=params)).json()
        assert body["personalization"] == "off" and body["rung"] in ("trending", "popular")
        page = await (await client.get("/v1/page", params={**params, "placement": "home"})).json()
        assert page["personalization"] == "off"
    allowed = await (await client.get("/v1/recommendations", params={"session_id": "anon-allows"})).json()
    assert allowed["personalization"] == "on" and allowed["rung"] == "session"


async def test_refusing_later_deletes_what_was_held_and_accepting_again_resumes(client, model_store,
                                                                                synthetic_store, redis_url):
    items, _ = _items(model_store, synthetic_store)
    shopper = {"session_id": "s-change", "user_id": "u-change"}
    await client.post("/v1/events", json=[{**event(f"e{n}", x, type="purchase", **shopper), "price": 10.0}
                                          for n, x in enumerate(items)])
    assert traces(redis_url, False, ["u-change"])
    resp = await client.put("/v1/consent", json={"user_id": "u-change", "personalization": False})
    assert resp.status == 200
    held = [t for t in traces(redis_url, False, ["u-change"])
            if not any(kept in t for kept in (":consent", ":sessions", ":stream'"))]
    # Live behaviour deleted. The choice and the sessions (for an erasure) stay, and so do the
    # events accepted while they consented, until exported: withdrawing is not erasing.
    assert held == []
    await client.put("/v1/consent", json={"user_id": "u-change", "personalization": True,
                                          "purposes": ["marketing"]})
    await client.post("/v1/events", json=[event("again", items[0], **shopper),
                                          event("again2", items[1], **shopper)])
    body = await (await client.get("/v1/recommendations", params=shopper)).json()
    assert body["personalization"] == "on" and body["rung"] in ("personalized", "session")


async def test_a_session_choice_follows_the_shopper_who_signs_in(client, model_store, synthetic_store,
                                                                  redis_url):
    items, _ = _items(model_store, synthetic_store)
    await client.put("/v1/consent", json={"session_id": "s-login", "personalization": False})
    # First request after signing in: the session's choice becomes the user's...
    body = await (await client.get("/v1/recommendations", params={"session_id": "s-login",
                                                                  "user_id": "u-login"})).json()
    assert body["personalization"] == "off"
    # ...so their events, stored under the user, leave nothing either.
    await client.post("/v1/events", json=[event("x1", items[0], session_id="s-login", user_id="u-login")])
    assert [t for t in traces(redis_url, False, ["u-login", "s-login"]) if ":consent" not in t] == []


async def test_opt_in_keeps_shoppers_anonymous_until_they_accept(aiohttp_client, model_store, tmp_path,
                                                                redis_url, synthetic_store):
    settings = make_settings(model_store, redis_url, tmp_path, **{"customers.default_consent": False})
    client = await aiohttp_client(create_app(settings))
    items, _ = _items(model_store, synthetic_store)
    await client.post("/v1/events", json=[event(f"o{n}", x, session_id="s-optin")
                                          for n, x in enumerate(items)])
    assert traces(redis_url, False, ["s-optin"]) == []
    body = await (await client.get("/v1/recommendations", params={"session_id": "s-optin"})).json()
    assert body["personalization"] == "off"
    await client.put("/v1/consent", json={"session_id": "s-optin", "personalization": True})
    await client.post("/v1/events", json=[event(f"p{n}", x, session_id="s-optin")
                                          for n, x in enumerate(items)])

    async def personal():
        body = await (await client.get("/v1/recommendations", params={"session_id": "s-optin"})).json()
        return body["rung"] == "session" and body["personalization"] == "on"

    assert await until(personal)


async def test_consent_body_is_validated(client):
    for body in ({"personalization": False}, {"session_id": "s", "personalization": "no"},
                 {"session_id": "s", "personalization": True, "purposes": ["bad purpose!"]},
                 {"session_id": "s", "personalization": True, "extra": 1}):
        resp = await client.put("/v1/consent", json=body)
        assert resp.status == 400, body
