"""Live segments through HTTP on a planted store (#23): a dormant customer who buys is no longer
dormant on the next request; the segment is in the profile and drives a variants condition; the
rules come from the admin API (validated, versioned, followed by every worker)."""

import numpy as np
import pytest

from models import artifact
from server.app import create_app
from tests.server.conftest import event, make_settings, now_ms, until

TOKEN = "admin-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DOC = {"slots": [{"key": "home_hero", "default": {"image": "spring"}}],
       "rules": [{"key": "winback", "slot": "home_hero", "condition": {"rfm_segment": "dormant"},
                  "content": {"image": "we-miss-you"}}]}


@pytest.fixture
async def app_client(aiohttp_client, planted_models, redis_url, tmp_path):
    settings = make_settings(planted_models, redis_url, tmp_path, **{"security.admin_token": TOKEN})
    return await aiohttp_client(create_app(settings))


def _published(planted_models, segment):
    seg = artifact.load_current(planted_models).segments
    return [u for u, s in zip(seg["users"], seg["segment"], strict=True) if s == segment]


async def _segment(client, user):
    body = await (await client.get(f"/v1/users/{user}/profile", headers=AUTH)).json()
    return body["segment"]["segment"], body


async def _hero(client, user):
    body = await (await client.get("/v1/variants", params={"slot": "home_hero", "user_id": user,
                                                           "session_id": f"s-{user}"})).json()
    return body["slots"]["home_hero"]["content"]["image"]


async def test_a_dormant_customer_who_buys_changes_segment_on_the_next_request(app_client, planted_models):
    client = app_client
    assert (await client.put("/v1/admin/experiments", json=DOC, headers=AUTH)).status == 200
    dormant = _published(planted_models, "dormant")[:3]
    assert dormant, "the planted store has dormant customers"
    model = artifact.load_current(planted_models)
    item = model.items.ids[int(np.argmax(model.popularity))]
    for user in dormant:
        segment, profile = await _segment(client, user)
        assert segment == "dormant" and profile["segment"]["published"] == "dormant"
        why = {c["field"]: c for c in profile["segment"]["conditions"]}
        assert 45 <= why["recency_days"]["actual"] < 180  # the figures the rule read, shown
        assert await until(lambda user=user: _is(_hero(client, user), "we-miss-you"))
        buy = event(f"buy-{user}", item, type="purchase", user_id=user, session_id=f"s-{user}")
        resp = await client.post("/v1/events", json={**buy, "price": 42.0})
        assert (await resp.json())["accepted"] == 1
        # The very next requests: the purchase is in the live statistics.
        segment, profile = await _segment(client, user)
        assert segment != "dormant" and profile["segment"]["features"]["recency_days"] < 0.01
        assert profile["purchases"]["since_model"][-1]["amount"] == 42.0
        assert await _hero(client, user) == "spring"


async def _is(coro, expected):
    return (await coro) == expected


async def test_segment_rules_from_the_admin_api_apply_to_every_worker(aiohttp_client, planted_models,
                                                                      redis_url, tmp_path):
    settings = make_settings(planted_models, redis_url, tmp_path, **{"security.admin_token": TOKEN})
    one = await aiohttp_client(create_app(settings))
    two = await aiohttp_client(create_app(settings))
    got = await (await one.get("/v1/admin/segments", headers=AUTH)).json()
    assert got["source"] == "model" and got["rules"]["segments"][-1]["name"] == "lost"
    bad = await one.put("/v1/admin/segments", headers=AUTH,
                        json={"segments": [{"name": "vip", "when": {"recency_dayz": {"lt": 30}}},
                                           {"name": "rest"}]})
    assert bad.status == 400 and "recency_dayz" in (await bad.json())["detail"]
    assert (await one.get("/v1/admin/segments")).status == 401
    rules = {"segments": [{"name": "big_spender", "when": {"spend": {"gt": 0}}}, {"name": "others"}]}
    stored = await (await one.put("/v1/admin/segments", json=rules, headers=AUTH)).json()
    assert stored["source"] == "stored" and stored["version"] >= 1
    buyer = _published(planted_models, "loyal")[0]

    async def on_two():
        return (await _segment(two, buyer))[0] == "big_spender"

    assert await until(on_two, timeout_s=2.0)  # the other worker polled the new version
    back = await (await one.delete("/v1/admin/segments", headers=AUTH)).json()
    assert back["source"] == "model"


async def test_the_profile_says_what_is_held_and_why(app_client, planted_models):
    client = app_client
    user = _published(planted_models, "loyal")[0]
    model = artifact.load_current(planted_models)
    items = [model.items.ids[i] for i in np.argsort(-model.popularity)[:3]]
    await client.post("/v1/events", json=[event(f"p{n}", x, user_id=user, session_id="s-prof", category=None)
                                          for n, x in enumerate(items)])
    await client.put("/v1/consent", json={"user_id": user, "personalization": True,
                                          "purposes": ["marketing"]})
    body = await (await client.get(f"/v1/users/{user}/profile", headers=AUTH)).json()
    assert body["consent"]["personalization"] is True and body["consent"]["purposes"] == ["marketing"]
    assert [e["item_id"] for e in body["live"]["recent_events"]] == items[::-1]
    assert body["sessions"][0]["session_id"] == "s-prof"
    assert body["segment"]["segment"] and body["segment"]["churn_probability"] is not None
    assert {k["key"].split(":")[-1] for k in body["keys"]} >= {"recent", "consent", "sessions"}
    assert body["purchases"]["published_items"] > 0
    assert (await client.get(f"/v1/users/{user}/profile")).status == 401
    now = now_ms()
    assert body["now_ms"] <= now


async def test_rules_profile_and_buy_again_on_every_flavour(aiohttp_client, planted_models, redis_target,
                                                            tmp_path):
    settings = make_settings(planted_models, redis_target.url, tmp_path, **{
        "security.admin_token": TOKEN, "redis.cluster": redis_target.cluster})
    client = await aiohttp_client(create_app(settings))
    rules = {"segments": [{"name": "buyer", "when": {"orders": {"gte": 1}}}, {"name": "others"}]}
    assert (await client.put("/v1/admin/segments", json=rules, headers=AUTH)).status == 200
    user = _published(planted_models, "loyal")[0]
    await client.post("/v1/events", json=[event("p1", _published_item(planted_models), type="purchase",
                                                user_id=user, session_id="s-flavour")])
    segment, profile = await _segment(client, user)
    assert segment == "buyer" and profile["sessions"][0]["session_id"] == "s-flavour"
    assert profile["keys"] and profile["purchases"]["since_model"]
    body = await (await client.get("/v1/recommendations", params={"placement": "buy_again",
                                                                  "user_id": user})).json()
    assert body["rung"] == "buy_again"


def _published_item(planted_models):
    model = artifact.load_current(planted_models)
    return model.items.ids[int(np.argmax(model.popularity))]


async def test_a_rules_file_is_stored_at_start_and_a_bad_one_is_refused(aiohttp_client, planted_models,
                                                                         redis_url, tmp_path):
    good = tmp_path / "rules.toml"
    good.write_text('[[segments]]\nname = "any_buyer"\nwhen = { orders = { gte = 1 } }\n\n'
                    '[[segments]]\nname = "window_shopper"\n')
    settings = make_settings(planted_models, redis_url, tmp_path, **{
        "security.admin_token": TOKEN, "customers.segment_rules_file": good})
    client = await aiohttp_client(create_app(settings))
    got = await (await client.get("/v1/admin/segments", headers=AUTH)).json()
    assert got["source"] == "stored" and [s["name"] for s in got["rules"]["segments"]] == ["any_buyer",
                                                                                          "window_shopper"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[segments]]\nname = "x"\nwhen = { nope = { lt = 1 } }\n\n[[segments]]\nname = "y"\n')
    other = await aiohttp_client(create_app(settings.replace(**{"customers.segment_rules_file": bad})))
    kept = await (await other.get("/v1/admin/segments", headers=AUTH)).json()
    assert kept["rules"]["segments"][0]["name"] == "any_buyer"
