"""Experiments end to end through HTTP: the document managed by the admin API, sticky variants
shared by workers, exposures and conversions counted once, results that match what happened."""

import asyncio
import copy

import numpy as np
import pytest

from server.app import create_app
from tests.server.conftest import event, make_settings, until

TOKEN = "admin-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DOC = {
    "slots": [{"key": "home_hero", "default": {"banner": "default"}}, {"key": "promo", "default": None}],
    "experiments": [{
        "key": "hero-test", "slots": ["home_hero"], "status": "running",
        "variants": [{"key": "control", "weight": 0.5, "content": {"banner": "summer"}},
                     {"key": "bold", "weight": 0.5, "content": {"banner": "bold-summer"}}],
        "goal": {"event_type": "purchase", "revenue": True}, "attribution_window_hours": 24,
    }],
    "rules": [{"key": "runners", "slot": "promo", "condition": {"top_category": "sports/c001"},
               "content": {"promo": "running-shoes"}}],
}


def _settings(model_store, redis_url, tmp_path, **more):
    return make_settings(model_store, redis_url, tmp_path, **{"server.admin_token": TOKEN, **more})


@pytest.fixture
async def app_client(aiohttp_client, model_store, redis_url, tmp_path):
    client = await aiohttp_client(create_app(_settings(model_store, redis_url, tmp_path)))
    resp = await client.put("/v1/admin/experiments", json=DOC, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return client


async def _variant(client, session, user=None, slot="home_hero"):
    params = {"slot": slot, "session_id": session, **({"user_id": user} if user else {})}
    resp = await client.get("/v1/variants", params=params)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["slots"][slot]


async def test_a_bad_document_is_refused_and_the_running_one_stays(app_client):
    bad = copy.deepcopy(DOC)
    bad["experiments"][0]["variants"][1]["weight"] = 0.7
    bad["experiments"][0]["slots"] = ["nowhere"]
    bad["rules"][0]["condition"] = {"$gtt": 3}
    resp = await app_client.put("/v1/admin/experiments", json=bad, headers=AUTH)
    assert resp.status == 400
    fields = {e["field"] for e in (await resp.json())["errors"]}
    assert {"experiments[0].variants", "experiments[0].slots[0]"} <= fields
    assert any(f.startswith("rules[0].condition") for f in fields)
    served = await (await app_client.get("/v1/admin/experiments", headers=AUTH)).json()
    assert served["experiments"][0]["variants"][1]["weight"] == 0.5 and served["version"] >= 1
    assert (await app_client.put("/v1/admin/experiments", json=DOC)).status == 401


async def test_variants_are_sticky_balanced_and_shared_by_every_worker(app_client, aiohttp_client,
                                                                      model_store, redis_url, tmp_path):
    other = await aiohttp_client(create_app(_settings(model_store, redis_url, tmp_path / "w2")))
    seen = {}
    for n in range(200):
        v = await _variant(app_client, f"s{n}")
        assert v["source"] == "experiment" and v["experiment"] == "hero-test"
        assert v["content"]["banner"] in ("summer", "bold-summer")
        seen[f"s{n}"] = v["variant"]
    assert 70 <= sum(x == "bold" for x in seen.values()) <= 130
    for session, variant in list(seen.items())[:40]:  # the other worker, and again: the same
        assert (await _variant(other, session))["variant"] == variant
        assert (await _variant(app_client, session))["variant"] == variant

    # Weights change: units already exposed keep their variant, new ones follow the weights.
    doc = copy.deepcopy(DOC)
    variants = doc["experiments"][0]["variants"]
    variants[0]["weight"], variants[1]["weight"] = 0.05, 0.95
    assert (await app_client.put("/v1/admin/experiments", json=doc, headers=AUTH)).status == 200
    version = (await (await app_client.get("/v1/admin/experiments", headers=AUTH)).json())["version"]

    async def other_has_it():
        resp = await other.get("/v1/variants", params={"slot": "home_hero", "session_id": "probe"})
        body = await resp.json()
        return body["version"] == version

    assert await until(other_has_it, timeout_s=2)  # every worker within a second or so
    for session, variant in list(seen.items())[:60]:
        assert (await _variant(other, session))["variant"] == variant
    fresh = [(await _variant(other, f"new{n}"))["variant"] for n in range(60)]
    assert sum(x == "bold" for x in fresh) >= 45


async def test_a_session_that_logs_in_keeps_its_variant_and_rules_target_live_affinity(app_client,
                                                                                      model_store):
    v = await _variant(app_client, "anon-1")
    assert (await _variant(app_client, "anon-1", user="u-logged"))["variant"] == v["variant"]
    assert (await _variant(app_client, "other-device", user="u-logged"))["variant"] == v["variant"]

    from models import artifact

    model = artifact.load_current(model_store)
    items = [i for i, c in zip(model.items.ids, model.items.category, strict=True) if c == "sports/c001"][:3]
    assert items, "the synthetic store has the category the rule targets"
    for n, item in enumerate(items):
        await app_client.post("/v1/events",
                              json=event(f"r{n}", item, session_id="runner", category="sports/c001"))
    promo = await _variant(app_client, "runner", slot="promo")
    assert promo == {"content": {"promo": "running-shoes"}, "source": "rule", "rule": "runners",
                     "experiment": None, "variant": None}
    assert (await _variant(app_client, "anon-1", slot="promo"))["source"] == "default"


async def test_forced_variants_need_the_admin_token(app_client):
    params = {"slot": "home_hero", "session_id": "qa", "force": "hero-test:bold"}
    assert (await app_client.get("/v1/variants", params=params)).status == 401
    body = await (await app_client.get("/v1/variants", params=params, headers=AUTH)).json()
    hero = body["slots"]["home_hero"]
    assert hero["source"] == "forced" and hero["variant"] == "bold"


async def test_exposures_and_purchases_give_the_results_that_happened(app_client, model_store):
    """Units exposed, a known share of each variant buys (one retried batch among them): the
    results count exactly the units and conversions simulated, once."""
    from models import artifact

    item = artifact.load_current(model_store).items.ids[5]
    rng = np.random.default_rng(4)
    truth = {"control": [0, 0], "bold": [0, 0]}
    revenue = {"control": 0.0, "bold": 0.0}
    batch = []
    for n in range(300):
        session = f"unit{n}"
        variant = (await _variant(app_client, session))["variant"]
        truth[variant][0] += 1
        if rng.random() < (0.1 if variant == "control" else 0.3):
            truth[variant][1] += 1
            revenue[variant] += 20.0
            batch.append({**event(f"buy-{n}", item, type="purchase", session_id=session), "price": 10.0,
                          "quantity": 2})
    resp = await app_client.post("/v1/events", json=batch)
    assert resp.status == 200 and (await resp.json())["accepted"] == len(batch)
    again = await (await app_client.post("/v1/events", json=batch)).json()  # a client's retry
    assert again["accepted"] == 0
    second = [{**b, "event_id": b["event_id"] + "-2nd"} for b in batch[:10]]  # a second purchase
    await app_client.post("/v1/events", json=second)

    body = await (await app_client.get("/v1/admin/experiments/hero-test/results", headers=AUTH)).json()
    by_key = {v["key"]: v for v in body["results"]["variants"]}
    for variant, (units, conversions) in truth.items():
        assert by_key[variant]["units"] == units and by_key[variant]["conversions"] == conversions
    extra = {"control": 0.0, "bold": 0.0}
    for b in second:
        extra[(await _variant(app_client, b["session_id"]))["variant"]] += 20.0
    for variant in truth:
        expected = (revenue[variant] + extra[variant]) / truth[variant][0]
        assert by_key[variant]["revenue_per_unit"] == pytest.approx(expected)
    lift = by_key["bold"]["conversion"]
    assert lift["ci"][0] < lift["lift"] < lift["ci"][1] and lift["chance_to_beat_control"] > 0.9
    assert body["results"]["srm"] is False and len(body["daily"]) >= 1
    assert (await app_client.get("/v1/admin/experiments/nope/results", headers=AUTH)).status == 404
    assert (await app_client.get("/v1/admin/experiments/hero-test/results")).status == 401


async def test_a_page_and_a_placement_experiment_in_one_call(app_client):
    doc = copy.deepcopy(DOC)
    doc["experiments"].append({
        "key": "home-strategy", "placement": "home", "status": "running",
        "variants": [{"key": "as-is", "weight": 0.5, "content": {}},
                     {"key": "no-diversity", "weight": 0.5, "content": {"max_category_share": 1.0}}]})
    assert (await app_client.put("/v1/admin/experiments", json=doc, headers=AUTH)).status == 200
    bad = copy.deepcopy(doc)
    bad["experiments"][1]["variants"][1]["content"] = {"deadline_ms": 5}
    resp = await app_client.put("/v1/admin/experiments", json=bad, headers=AUTH)
    assert resp.status == 400 and "unknown strategy setting" in (await resp.json())["errors"][0]["error"]

    page = await app_client.get("/v1/page", params=[("placement", "home"), ("slot", "home_hero"),
                                                    ("slot", "promo"), ("session_id", "page-1"), ("k", "4")])
    assert page.status == 200
    body = await page.json()
    home = body["recommendations"]["home"]
    assert len(home["items"]) == 4 and home["experiment"] == "home-strategy"
    assert home["variant"] in ("as-is", "no-diversity")
    assert set(body["slots"]) == {"home_hero", "promo"} and body["live_signals"] is True
    recs = await (await app_client.get("/v1/recommendations", params={"session_id": "page-1", "k": 4})).json()
    assert recs["variant"] == home["variant"]  # the same unit, the same strategy
    assert (await app_client.get("/v1/page", params={"placement": "moon", "session_id": "x"})).status == 400


async def test_conversions_wait_for_exposure_and_stay_inside_the_window(app_client, model_store):
    from models import artifact

    item = artifact.load_current(model_store).items.ids[7]
    await app_client.post("/v1/events", json=event("early", item, type="purchase", session_id="late-unit"))
    await _variant(app_client, "late-unit")  # exposed after its purchase: that one doesn't count
    stale = event("stale", item, type="purchase", session_id="late-unit")
    stale["ts"] -= 3 * 86_400_000  # before the exposure
    await app_client.post("/v1/events", json=stale)
    body = await (await app_client.get("/v1/admin/experiments/hero-test/results", headers=AUTH)).json()
    assert sum(v["conversions"] for v in body["results"]["variants"]) == 0
    assert sum(v["units"] for v in body["results"]["variants"]) == 1
    await asyncio.sleep(0)


async def test_the_results_page_renders_its_charts_in_a_browser(aiohttp_server, model_store, redis_url,
                                                                tmp_path):
    from tests.browser import rendered_dom

    server = await aiohttp_server(create_app(_settings(model_store, redis_url, tmp_path)))
    import aiohttp

    async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as http:
        assert (await http.put("/v1/admin/experiments", json=DOC, headers=AUTH)).status == 200
        buys = []
        for n in range(40):
            await http.get("/v1/variants", params={"slot": "home_hero", "session_id": f"b{n}"})
            if n % 3 == 0:
                buys.append(event(f"bb{n}", "i0000001", type="purchase", session_id=f"b{n}"))
        assert (await http.post("/v1/events", json=buys)).status == 200
        page = await http.get("/experiments/hero-test")
        assert page.status == 200 and "text/html" in page.headers["Content-Type"]
        assert "<script src=" not in await page.text()  # self-contained: no CDN
    base = f"http://127.0.0.1:{server.port}/experiments/hero-test"
    dom = await rendered_dom(f"{base}#token={TOKEN}", tmp_path / "profile")
    assert 'data-rendered="true"' in dom
    assert "control (control)" in dom and ">bold<" in dom  # the per-variant table
    # One day of data so far: a point per variant on the trend, one on the lift (SVG, no library).
    assert dom.count("<circle") >= 3 and dom.count("<polygon") >= 1
    refused = await rendered_dom(base, tmp_path / "profile2")
    assert "needs the admin token" in refused and 'data-rendered="true"' not in refused
