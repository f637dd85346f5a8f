"""The whole server on every Redis flavour (embedded, TCP with a password, a 3-master Redis
Cluster), through HTTP: events ingested, recommendations personalised, trending counted."""

import numpy as np

from models import artifact
from server.app import create_app
from tests.server.conftest import event, make_settings, until


async def test_ingest_personalise_and_trend_on_every_flavour(aiohttp_client, model_store, redis_target,
                                                             tmp_path, synthetic_store):
    settings = make_settings(model_store, redis_target.url, tmp_path,
                             **{"redis.cluster": redis_target.cluster})
    client = await aiohttp_client(create_app(settings))
    model = artifact.load_current(model_store)
    style = synthetic_store.item_style
    probe = int(np.argmax(model.popularity * model.items.in_stock))
    block = [i for i in np.flatnonzero(style == style[probe]) if model.items.in_stock[i]]
    viewed = [model.items.ids[i] for i in block[:3]]
    # Many shoppers at once: on the cluster their keys and stream shards spread over the masters.
    batch = [event(f"{s}-{n}", item, session_id=f"shopper-{s}") for s in range(12)
             for n, item in enumerate(viewed)]
    resp = await client.post("/v1/events", json=batch)
    assert resp.status == 200 and (await resp.json())["accepted"] == len(batch)
    retry = await (await client.post("/v1/events", json=batch)).json()
    assert retry["accepted"] == 0 and len(retry["duplicates"]) == len(batch)

    for s in range(12):
        body = await (await client.get("/v1/recommendations", params={"session_id": f"shopper-{s}"})).json()
        assert body["rung"] == "session" and body["live_signals"] is True
        assert not set(viewed) & {x["item_id"] for x in body["items"]}

    async def trending():
        body = await (await client.get("/v1/trending", params={"k": 5})).json()
        return body if body["rung"] == "trending" else None

    body = await until(trending)
    assert body and set(viewed) <= {x["item_id"] for x in body["items"]}
    assert (await client.get("/readyz")).status == 200
