"""Erasure (#23): after DELETE /v1/users/{id}, a scan of every Redis key and stream entry finds
no trace of the customer's ids (the user id and every session linked to them), on the embedded
Redis, a TCP Redis and a Redis Cluster; the next export leaves them out, and the tombstone for
training names them."""

from pathlib import Path

import numpy as np
import orjson
import redis.asyncio
from redis.asyncio.cluster import RedisCluster

from models import archive, artifact
from server.app import create_app
from server.events.export import export_events
from server.store.keys import Keys
from tests.server.conftest import event, make_settings
from tests.server.customers.traces import traces

TOKEN = "admin-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXPERIMENT = {
    "slots": [{"key": "home_hero", "default": {"image": "spring"}}],
    "experiments": [{"key": "hero-test", "slots": ["home_hero"], "status": "running",
                     "variants": [{"key": "a", "weight": 0.5, "content": {"image": "a"}},
                                  {"key": "b", "weight": 0.5, "content": {"image": "b"}}]}]}
ERASED = ["u-erase", "s-e1", "s-e2", "s-e3"]


def _client(target):
    return RedisCluster.from_url(target.url) if target.cluster else redis.asyncio.Redis.from_url(target.url)


async def test_erasure_leaves_no_trace_and_the_export_skips_them(aiohttp_client, model_store, redis_target,
                                                                 tmp_path):
    settings = make_settings(model_store, redis_target.url, tmp_path, **{
        "redis.cluster": redis_target.cluster, "security.admin_token": TOKEN,
        "triggers.viewed_min_price": 1.0})
    client = await aiohttp_client(create_app(settings))
    assert (await client.put("/v1/admin/experiments", json=EXPERIMENT, headers=AUTH)).status == 200
    model = artifact.load_current(model_store)
    items = [model.items.ids[i] for i in np.argsort(-model.popularity)[:4]]

    async def visit(n, **shopper):
        await client.get("/v1/variants", params={"slot": "home_hero", **shopper})
        await client.get("/v1/recommendations", params=shopper)
        batch = [{**event(f"{n}-v{k}", items[0], **shopper), "price": 50.0} for k in range(3)]
        batch += [event(f"{n}-c", items[1], type="add_to_cart", **shopper),
                  {**event(f"{n}-p", items[2], type="purchase", **shopper), "price": 20.0}]
        assert (await (await client.post("/v1/events", json=batch)).json())["accepted"] == len(batch)

    await visit("anon", session_id="s-e1")  # before signing in
    await visit("in1", session_id="s-e1", user_id="u-erase")  # same session, signed in: linked
    await visit("in2", session_id="s-e2", user_id="u-erase")  # another device
    await visit("other", session_id="s-e3")  # a session the server never saw them sign in with
    await visit("keep", session_id="s-keep", user_id="u-keep")
    await client.put("/v1/consent", json={"user_id": "u-erase", "personalization": True})
    url, cluster = redis_target.url, redis_target.cluster
    assert all(traces(url, cluster, [x]) for x in ERASED)
    async with _client(redis_target) as r:
        assert sum([await r.xlen(f"vt:{{g:{n}}}:triggers") for n in range(16 if cluster else 1)]) >= 4

    resp = await client.delete("/v1/users/u-erase", params={"session_id": "s-e3"}, headers=AUTH)
    assert resp.status == 200
    body = await resp.json()
    assert body["sessions"] == ["s-e1", "s-e2", "s-e3"] and body["stream_entries"] == 20
    assert body["trigger_entries"] >= 3

    assert traces(url, cluster, ERASED) == []  # no key, member, field, value or stream entry
    assert traces(url, cluster, ["u-keep", "s-keep"])  # the others are untouched
    tombstone = orjson.loads(Path(body["tombstone"]).read_bytes())
    assert tombstone["user_ids"] == ["u-erase"] and tombstone["session_ids"] == ["s-e1", "s-e2", "s-e3"]
    assert (await client.delete("/v1/users/u-erase", headers=AUTH)).status == 200  # idempotent

    # A late event of theirs (an offline queue) after the erasure: never exported either.
    await client.post("/v1/events", json=[event("late", items[3], session_id="s-e2", user_id="u-erase")])
    async with _client(redis_target) as r:
        await export_events(r, tmp_path / "archive", Keys("vt", settings.redis.stream_shards))
    lines = archive.read_window(tmp_path / "archive").to_pylist()
    assert {e["session_id"] for e in lines} == {"s-keep"} and len(lines) == 5
    assert (await client.get("/v1/users/u-keep/profile", headers=AUTH)).status == 200
    assert (await client.delete("/v1/users/u-keep")).status == 401
