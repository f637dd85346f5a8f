"""API keys on every protected route (as the OpenAPI document declares them), CORS per origin,
and the per-key event rate limit that never loses an acknowledged event."""

from __future__ import annotations

import asyncio
import re

import msgspec
import pytest
import redis

from models import artifact
from models.events import Event
from server.app import create_app
from server.web.ratelimit import EventLimiter
from tests.server.conftest import event, make_settings

SHOP = "https://shop.example"
KEYS = {"security.public_keys": ["pk-shop", "pk-app"], "security.admin_token": "adm1n",
        "security.cors_origins": [SHOP]}
PUBLIC, ADMIN = {"X-API-Key": "pk-shop"}, {"Authorization": "Bearer adm1n"}


@pytest.fixture
async def secured(aiohttp_client, model_store, redis_url, tmp_path):
    return await aiohttp_client(create_app(make_settings(model_store, redis_url, tmp_path, **KEYS)))


def _call(client, method: str, path: str, item: str, headers: dict):
    """A valid request to `path` (so that only the key decides its fate)."""
    url = re.sub(r"\{[^}]+\}", item, path)  # every path parameter: a real item id
    params = {"item_id": item} if path == "/v1/items/similar" else None
    body = [event("sec-1", item)] if path == "/v1/events" else None
    return client.request(method.upper(), url, params=params, json=body, headers=headers)


async def test_every_protected_route_refuses_a_missing_or_wrong_key(secured, model_store):
    doc = await (await secured.get("/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    assert (schemes["apiKey"]["type"], schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == \
        ("apiKey", "header", "X-API-Key")
    assert (schemes["adminToken"]["type"], schemes["adminToken"]["scheme"]) == ("http", "bearer")
    item = artifact.load_current(model_store).items.ids[0]
    ops = [(m, p, op) for p, by_method in doc["paths"].items() for m, op in by_method.items()]
    protected = [(m, p, op) for m, p, op in ops if op.get("security")]
    # Every API path needs a key; what needs none is health, metrics, the document and the pages.
    assert {p for _, p, _ in protected} == {p for _, p, _ in ops if p.startswith("/v1/")}
    open_paths = {p for _, p, op in ops if not op.get("security")}
    assert open_paths >= {"/healthz", "/readyz", "/metrics", "/openapi.json", "/vitrine.js", "/dashboard"}
    assert all(op.get("security") == [{"adminToken": []}] for _, p, op in protected
               if p.startswith("/v1/admin/") or p == "/v1/models/current")
    for method, path, op in protected:
        admin_only = op.get("security") == [{"adminToken": []}]
        wrong = [{}, {"X-API-Key": "nope"}, {"X-API-Key": "pk-sho"}, {"Authorization": "Bearer nope"},
                 {"X-API-Key": "adm1n"}, {"Authorization": "pk-shop"}]
        if admin_only:
            wrong.append(PUBLIC)  # a storefront key is not an admin token
        for headers in wrong:
            resp = await _call(secured, method, path, item, headers)
            assert resp.status == 401, (method, path, headers, resp.status)
            assert (await resp.json())["error"] == "unauthorized"
            assert "401" in op["responses"]
        for headers in ([ADMIN] if admin_only else [PUBLIC, {"X-API-Key": "pk-app"}, ADMIN]):
            resp = await _call(secured, method, path, item, headers)  # past the key: 200 or its own 4xx
            assert resp.status != 401, (method, path, headers, await resp.text())
            if path in ("/v1/events", "/v1/recommendations", "/v1/trending", "/v1/admin/reload"):
                assert resp.status == 200, (method, path, headers, await resp.text())
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert (await secured.get(path)).status == 200


async def test_an_open_server_says_so_and_declares_nothing(client):
    ready = await (await client.get("/readyz")).json()
    assert any("no API keys" in w for w in ready["warnings"])
    assert any("admin endpoints are open" in w for w in ready["warnings"])
    doc = await (await client.get("/openapi.json")).json()
    assert not any("security" in op for ops in doc["paths"].values() for op in ops.values())
    assert (await client.post("/v1/admin/reload")).status == 200


async def test_a_configured_server_is_quiet_and_admin_needs_its_token(secured, aiohttp_client, model_store,
                                                                      redis_url, tmp_path):
    assert (await (await secured.get("/readyz")).json())["warnings"] == []
    # Storefront keys but no admin token: admin endpoints are refused, not open.
    only_public = make_settings(model_store, redis_url, tmp_path, **{"security.public_keys": ["pk"]})
    client = await aiohttp_client(create_app(only_public))
    resp = await client.post("/v1/admin/reload", headers={"X-API-Key": "pk", "Authorization": "Bearer "})
    assert resp.status == 401 and "no admin token is configured" in (await resp.json())["detail"]


async def test_a_preflight_from_an_allowed_origin_succeeds_and_from_another_is_refused(secured):
    for path, method in (("/v1/recommendations", "GET"), ("/v1/events", "POST")):
        ok = await secured.options(path, headers={"Origin": SHOP, "Access-Control-Request-Method": method,
                                                  "Access-Control-Request-Headers": "x-api-key,content-type"})
        assert ok.status == 204
        assert ok.headers["Access-Control-Allow-Origin"] == SHOP
        assert method in ok.headers["Access-Control-Allow-Methods"]
        assert "X-API-Key" in ok.headers["Access-Control-Allow-Headers"]
        refused = await secured.options(path, headers={"Origin": "https://evil.example",
                                                       "Access-Control-Request-Method": method})
        assert refused.status == 403 and "Access-Control-Allow-Origin" not in refused.headers
        assert (await refused.json())["error"] == "forbidden"
    unknown = await secured.options("/v1/nothing",
                                    headers={"Origin": SHOP, "Access-Control-Request-Method": "GET"})
    assert unknown.status == 404
    # The actual request: the allowed origin may read the answer (and its request id), others not.
    resp = await secured.get("/v1/trending", headers={"Origin": SHOP, **PUBLIC})
    assert resp.headers["Access-Control-Allow-Origin"] == SHOP
    assert "X-Request-ID" in resp.headers["Access-Control-Expose-Headers"]
    other = await secured.get("/v1/trending", headers={"Origin": "https://evil.example", **PUBLIC})
    assert "Access-Control-Allow-Origin" not in other.headers
    # Errors carry the headers too, so the page can read why it was refused.
    denied = await secured.get("/v1/trending", headers={"Origin": SHOP})
    assert denied.status == 401 and denied.headers["Access-Control-Allow-Origin"] == SHOP


async def test_over_rate_ingestion_gets_429_and_nothing_acknowledged_is_lost(aiohttp_client, model_store,
                                                                            redis_url, tmp_path):
    settings = make_settings(model_store, redis_url, tmp_path, **KEYS, **{
        "security.events_per_s": 10, "security.events_burst": 10, "server.max_batch_events": 5})
    client = await aiohttp_client(create_app(settings))
    items = artifact.load_current(model_store).items.ids
    acknowledged, refused = set(), []
    for batch in range(4):
        events = [event(f"r{batch}-{n}", items[n], session_id="rl") for n in range(5)]
        resp = await client.post("/v1/events", json=events, headers=PUBLIC)
        if resp.status == 200:
            assert (await resp.json())["accepted"] == 5
            acknowledged |= {e["event_id"] for e in events}
        else:
            assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
            assert (await resp.json())["error"] == "rate_limited"
            refused.append((events, int(resp.headers["Retry-After"])))
    assert len(acknowledged) == 10 and len(refused) == 2
    # Another key has its own budget.
    other = await client.post("/v1/events", json=[event("other-1", items[9], session_id="rl2")],
                              headers={"X-API-Key": "pk-app"})
    assert other.status == 200
    acknowledged.add("other-1")
    assert _stored(redis_url) == acknowledged  # the refused batches stored nothing
    # Retried after Retry-After, a refused batch is accepted.
    events, wait_s = refused[0]
    await asyncio.sleep(wait_s)
    resp = await client.post("/v1/events", json=events, headers=PUBLIC)
    assert resp.status == 200 and (await resp.json())["accepted"] == 5
    assert _stored(redis_url) == acknowledged | {e["event_id"] for e in events}
    metrics = await (await client.get("/metrics")).text()
    assert 'vitrine_events_total{outcome="rate_limited"} 10.0' in metrics


def _stored(redis_url: str) -> set[str]:
    r = redis.Redis.from_url(redis_url)
    try:
        return {msgspec.msgpack.decode(f[b"e"], type=Event).event_id
                for key in r.scan_iter(match="vt:*:stream") for _, f in r.xrange(key)}
    finally:
        r.close()


def test_the_limiter_refills_at_its_rate_and_admits_whole_batches_only():
    limiter = EventLimiter(rate_per_s=10, burst=20)
    assert limiter.take("k", 20, now=0.0) == 0
    assert limiter.take("k", 5, now=0.0) == pytest.approx(0.5)  # refused: nothing taken
    assert limiter.take("k", 5, now=0.5) == 0
    assert limiter.take("k", 1, now=0.5) == pytest.approx(0.1)
    assert limiter.take("other", 20, now=0.5) == 0
    assert limiter.take("k", 20, now=100.0) == 0  # capped at the burst, not 1000 tokens
    assert limiter.take("k", 1, now=100.0) > 0
    assert EventLimiter(None, 0).take("k", 10**6) == 0
