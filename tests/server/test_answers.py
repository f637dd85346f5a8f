"""Answers that explain themselves: reasons name only real items the shopper saw, items brought
in by the diversity cap or a top-up say so, one score scale on every endpoint, and the model
info is what operators expect (the version on /healthz, ISO times)."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from models import artifact
from server.merchandising.applied import Applied
from server.recommend.caches import Caches
from server.recommend.finish import VARIETY, Explain, Stage, finish
from server.recommend.model import ServingModel
from tests.server.conftest import event


async def test_reasons_name_only_known_items_the_shopper_saw(client, model_store):
    ids = artifact.load_current(model_store).items.ids
    seen = [ids[10], ids[11], ids[12]]
    events = [event(f"a{n}", item, session_id="explain") for n, item in enumerate(seen)]
    events.append(event("a-unknown", "NOPE-not-in-the-model", session_id="explain"))
    assert (await (await client.post("/v1/events", json=events)).json())["accepted"] == 4
    body = await (await client.get("/v1/recommendations", params={"session_id": "explain", "k": 20})).json()
    named = [x["reason"].rsplit(" ", 1)[1] for x in body["items"] if x["reason"].startswith("because you")]
    assert named and set(named) <= set(seen)
    # The page's items: an unknown id is never what an answer is "similar to".
    for params in ({"placement": "cart", "item_id": f"NOPE,{ids[20]}"},
                   {"placement": "product", "item_id": f"NOPE,{ids[20]}", "session_id": "cold"}):
        body = await (await client.get("/v1/recommendations", params=params)).json()
        assert body["items"] and not any("NOPE" in x["reason"] for x in body["items"])
        assert any(x["reason"] == f"similar to {ids[20]}" for x in body["items"])
    body = await (await client.get("/v1/items/similar", params={"item_id": f"NOPE,{ids[20]}"})).json()
    assert {x["reason"] for x in body["items"]} == {f"similar to {ids[20]}"}


def test_items_the_diversity_cap_brings_in_say_so(model_store):
    model = ServingModel.from_artifact(artifact.load_current(model_store))
    caches = Caches(model)
    cats = model.item_category
    a, b = (int(c) for c in np.unique(cats[cats >= 0])[:2])
    in_a = np.flatnonzero(cats == a)[:10]
    in_b = np.flatnonzero(cats == b)[:2]
    items = np.concatenate([in_a, in_b]).astype(np.int64)
    scores = np.concatenate([np.linspace(1.0, 0.6, 10), [0.2, 0.1]]).astype(np.float32)
    context = model.art.items.ids[int(in_a[0])]
    capped = Stage(model, caches, caches.base_view(model), Applied(), None, [], 0.0, 0.6)
    ranked = finish(capped, items, scores, 5, Explain("context", context=context))
    reasons = dict(zip(ranked.items, ranked.reasons, strict=True))
    assert [reasons[int(i)] for i in in_b] == [VARIETY, VARIETY]  # cap 3 of 5: b's two make room
    assert {reasons[i] for i in ranked.items if i in set(in_a.tolist())} == {f"similar to {context}"}
    # Without the cap, the same candidates are just the best five, each for its rung's reason.
    uncapped = Stage(model, caches, caches.base_view(model), Applied(), None, [], 0.0, 1.0)
    plain = finish(uncapped, items, scores, 5, Explain("context", context=context))
    assert set(plain.items) <= set(in_a.tolist()) and VARIETY not in plain.reasons


async def test_one_score_scale_across_endpoints(client, model_store):
    ids = artifact.load_current(model_store).items.ids
    answers = [await (await client.get(path, params=params)).json() for path, params in (
        ("/v1/recommendations", {"k": 10}),
        ("/v1/recommendations", {"placement": "product", "item_id": ids[5], "k": 10}),
        (f"/v1/items/{ids[5]}/similar", {"k": 10}),
        ("/v1/items/similar", {"item_id": f"{ids[5]},{ids[6]}", "k": 10}),
        ("/v1/trending", {"k": 10}))]
    for body in answers:
        scores = [x["score"] for x in body["items"]]
        assert scores[0] == 1.0 and all(-1.0 <= s <= 1.0 for s in scores), body
        assert scores == sorted(scores, reverse=True)


async def test_health_and_model_info_name_the_version_and_use_iso_times(client, model_store):
    version = artifact.current_version(model_store)
    assert (await (await client.get("/healthz")).json())["model_version"] == version
    info = await (await client.get("/v1/models/current")).json()
    created, loaded = datetime.fromisoformat(info["created"]), datetime.fromisoformat(info["loaded_at"])
    assert loaded.tzinfo is not None and created.tzinfo is not None and loaded >= created
    metrics = await (await client.get("/metrics")).text()
    assert f'vitrine_model_info{{version="{version}"}} 1.0' in metrics
    line = next(x for x in metrics.splitlines() if x.startswith("vitrine_model_created_timestamp_seconds "))
    assert float(line.split()[1]) == created.timestamp()
