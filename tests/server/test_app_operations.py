"""Faults, hot reload, readiness and the OpenAPI document."""

import asyncio
import shutil

import numpy as np
import orjson
import redis

from models import artifact
from server.app import API_GROUPS, create_app
from server.store.embedded import EmbeddedRedis
from tests.server.conftest import event, make_settings, until


async def test_redis_killed_mid_test(aiohttp_client, model_store, tmp_path):
    server = EmbeddedRedis(tmp_path / "redis").start()
    client = await aiohttp_client(create_app(make_settings(model_store, server.url, tmp_path)))
    model = artifact.load_current(model_store)
    user = model.user_ids[int(np.argmax(np.linalg.norm(model.user_factors, axis=1)))]
    acked = [event(f"k{n}", model.items.ids[n], user_id=user) for n in range(5)]
    assert (await (await client.post("/v1/events", json=acked)).json())["accepted"] == 5

    server.kill()
    product = {"placement": "product", "item_id": model.items.ids[3], "session_id": "anon"}
    for params, rungs in [({"user_id": user}, {"personalized"}),
                          ({"session_id": "anon"}, {"trending", "popular"}), (product, {"context"})]:
        resp = await client.get("/v1/recommendations", params=params)
        assert resp.status == 200
        body = await resp.json()
        assert body["rung"] in rungs and body["items"] and body["live_signals"] is False

    async def degraded_trending():
        resp = await client.get("/v1/trending")
        assert resp.status == 200
        return (await resp.json())["live_signals"] is False

    # The last trending lists serve on for a while, and say so once they are no longer fresh.
    assert await until(degraded_trending, timeout_s=5)
    resp = await client.post("/v1/events", json=[event("lost?", model.items.ids[9], user_id=user)])
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    assert (await resp.json())["error"] == "unavailable"
    assert (await client.get("/readyz")).status == 503

    server.start()
    assert (await client.get("/readyz")).status == 200
    # Everything acknowledged before the crash is there; the refused event was not stored.
    r = redis.Redis.from_url(server.url)
    stored = {e["event_id"] for e in _stream(r)}
    assert stored == {f"k{n}" for n in range(5)}
    r.close()
    retry = await client.post("/v1/events", json=[event("lost?", model.items.ids[9], user_id=user)])
    assert (await retry.json())["accepted"] == 1
    server.stop()


def _stream(r):
    import msgspec

    from models.events import Event
    return [msgspec.to_builtins(msgspec.msgpack.decode(f[b"e"], type=Event))
            for _, f in r.xrange("vt:{g:0}:stream")]


async def test_new_version_is_hot_swapped_without_failing_requests(aiohttp_client, model_store,
                                                                   redis_url, tmp_path):
    store = tmp_path / "models"
    shutil.copytree(model_store, store)
    client = await aiohttp_client(create_app(make_settings(store, redis_url, tmp_path)))
    before = (await (await client.get("/v1/models/current")).json())["version"]
    # Publish a "new" version: the same files under a new name, CURRENT switched atomically.
    new = "29990101T000000Z-0000beef"

    def write(directory):
        for path in (store / before).iterdir():
            shutil.copy(path, directory)
        manifest = orjson.loads((directory / "manifest.json").read_bytes())
        (directory / "manifest.json").write_bytes(orjson.dumps({**manifest, "version": new}))

    artifact.publish(store, new, write)
    statuses, seen = [], set()
    for _ in range(60):
        resp = await client.get("/v1/recommendations", params={"session_id": "x"})
        statuses.append(resp.status)
        seen.add((await resp.json())["model_version"])
        if new in seen:
            break
        await asyncio.sleep(0.02)
    assert set(statuses) == {200} and new in seen
    reloaded = await (await client.post("/v1/admin/reload")).json()
    assert reloaded["version"] == new and reloaded["reload_error"] is None


async def test_corrupt_new_version_keeps_serving_the_old_one(aiohttp_client, model_store, redis_url,
                                                             tmp_path):
    store = tmp_path / "models"
    shutil.copytree(model_store, store)
    client = await aiohttp_client(create_app(make_settings(store, redis_url, tmp_path)))
    before = (await (await client.get("/v1/models/current")).json())["version"]
    bad = "29990101T000000Z-0000dead"
    shutil.copytree(store / before, store / bad)
    manifest = orjson.loads((store / bad / "manifest.json").read_bytes())
    (store / bad / "manifest.json").write_bytes(orjson.dumps({**manifest, "version": bad}))
    (store / bad / "index.faiss").write_bytes(b"garbage")
    (store / artifact.CURRENT).write_text(bad)  # by hand: set_current would refuse it
    info = await (await client.post("/v1/admin/reload")).json()
    assert info["version"] == before and "cannot load" in info["reload_error"]
    assert (await client.get("/v1/recommendations")).status == 200


async def test_admin_token_guards_reload(aiohttp_client, model_store, redis_url, tmp_path):
    settings = make_settings(model_store, redis_url, tmp_path, **{"security.admin_token": "s3cret"})
    client = await aiohttp_client(create_app(settings))
    for headers in ({}, {"Authorization": "s3cret"}, {"Authorization": "Bearer wrong"},
                    {"Authorization": "Basic s3cret"}):
        resp = await client.post("/v1/admin/reload", headers=headers)
        assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    # A byte that is not UTF-8 in the header is a wrong token, not a server error.
    raw = await client.session.request("POST", client.make_url("/v1/admin/reload"),
                                       headers={"Authorization": "Bearer \udcffs3cret".encode(
                                           "utf-8", "surrogateescape").decode("latin-1")})
    assert raw.status == 401
    ok = await client.post("/v1/admin/reload", headers={"Authorization": "Bearer s3cret"})
    assert ok.status == 200
    doc = await (await client.get("/openapi.json")).json()
    assert doc["paths"]["/v1/admin/reload"]["post"]["security"] == [{"adminToken": []}]
    assert "401" in doc["paths"]["/v1/admin/reload"]["post"]["responses"]


async def test_no_model_yet_is_503_not_500(aiohttp_client, redis_url, tmp_path):
    client = await aiohttp_client(create_app(make_settings(tmp_path / "empty", redis_url, tmp_path)))
    resp = await client.get("/v1/recommendations")
    assert resp.status == 503 and (await resp.json())["error"] == "unavailable"
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200


async def test_openapi_lists_exactly_the_served_routes(client):
    doc = await (await client.get("/openapi.json")).json()
    served = {(r.method.lower(), r.resource.canonical) for r in client.app.router.routes()
              if r.method != "HEAD"}
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    declared = {(op.method.lower(), op.path) for api in API_GROUPS for op in api.operations}
    assert served == documented == declared
    for ops in doc["paths"].values():
        for op in ops.values():
            for response in op["responses"].values():
                ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
                if ref:
                    assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]


async def test_responses_carry_the_documented_fields(client):
    doc = await (await client.get("/openapi.json")).json()
    schema = doc["components"]["schemas"]["Recommendations"]
    body = await (await client.get("/v1/recommendations", params={"k": 3})).json()
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])
    item_schema = doc["components"]["schemas"]["RecommendedItem"]
    assert set(item_schema["required"]) <= set(body["items"][0]) <= set(item_schema["properties"])
    metrics = await (await client.get("/metrics")).text()
    assert "vitrine_requests_total" in metrics and "vitrine_recommendation_rung_total" in metrics
    assert np.isfinite([x["score"] for x in body["items"]]).all()


async def test_a_cold_visitor_is_told_live_signals_are_off_once_redis_is_gone(aiohttp_client, model_store,
                                                                             tmp_path):
    """A visitor with no ids reads nothing from Redis: their only live signal is the trending
    snapshot, so its first failed refresh turns `live_signals` off (the last lists serve on)."""
    server = EmbeddedRedis(tmp_path / "redis").start()
    settings = make_settings(model_store, server.url, tmp_path, **{"recommend.trending_refresh_s": 0.2})
    client = await aiohttp_client(create_app(settings))
    assert (await (await client.get("/v1/recommendations")).json())["live_signals"] is True
    server.kill()

    async def cold_is_degraded():
        resp = await client.get("/v1/recommendations")
        assert resp.status == 200
        return (await resp.json())["live_signals"] is False

    assert await until(cold_is_degraded, timeout_s=1.0)  # one refresh interval, not 3
    server.start()
    assert await until(lambda: _live(client), timeout_s=2.0)
    server.stop()


async def _live(client):
    return (await (await client.get("/v1/recommendations")).json())["live_signals"]
