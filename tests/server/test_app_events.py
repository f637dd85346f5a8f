"""POST /v1/events: validation at the door, idempotency, limits."""

import io

from tests.server.conftest import event, now_ms


async def test_batch_reports_accepted_and_rejected_per_event(client):
    batch = {"events": [event("e1", "i0000001"), {"event_id": "e2", "session_id": "s1", "type": "view",
                                                  "ts": "yesterday", "item_id": "i1"},
                        event("e3", "i0000002", type="purchase"), {"event_id": "e4", "type": "zap"}]}
    resp = await client.post("/v1/events", json=batch)
    assert resp.status == 200
    body = await resp.json()
    assert body["accepted"] == 2 and body["duplicates"] == []
    assert [r["index"] for r in body["rejected"]] == [1, 3]
    assert "Expected `int`, got `str` - at `$.ts`" in body["rejected"][0]["error"]
    assert body["rejected"][0]["event_id"] == "e2"


async def test_retry_is_idempotent(client):
    batch = [event("e1", "i0000001"), event("e2", "i0000002")]
    assert (await (await client.post("/v1/events", json=batch)).json())["accepted"] == 2
    again = await (await client.post("/v1/events", json=batch)).json()
    assert again["accepted"] == 0 and again["duplicates"] == ["e1", "e2"]


async def test_single_event_and_bare_list_are_accepted(client):
    assert (await (await client.post("/v1/events", json=event("x1", "i1"))).json())["accepted"] == 1
    assert (await (await client.post("/v1/events", json=[event("x2", "i1")])).json())["accepted"] == 1


async def test_bad_bodies_get_machine_readable_4xx(client):
    cases = [
        (b"not json", 400, "bad_request"),
        (b"[]", 400, "bad_request"),
        (b'{"events": 3}', 400, "bad_request"),
        (b'[{"event_id": "a"}]', 422, "invalid_events"),
        (b'[' + b",".join([b'{"event_id":"a","session_id":"s","type":"search","ts":1}'] * 501) + b"]",
         413, "payload_too_large"),
        (b"x" * (2 << 20), 413, "payload_too_large"),
    ]
    for body, status, code in cases:
        data = io.BytesIO(body) if len(body) > 1 << 20 else body
        resp = await client.post("/v1/events", data=data, headers={"Content-Type": "application/json"})
        assert resp.status == status, body[:40]
        payload = await resp.json()
        assert payload["error"] == code and payload["detail"] and payload["request_id"]
    resp = await client.post("/v1/events", data=b'[{"event_id": "a"}]')
    assert (await resp.json())["rejected"][0]["error"].startswith("Object missing required field")


async def test_unknown_route_and_method(client):
    resp = await client.get("/v1/nope")
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    resp = await client.delete("/v1/events")
    assert resp.status == 405 and (await resp.json())["error"] == "method_not_allowed"
    assert resp.headers["Allow"] == "POST"


async def test_a_timestamp_too_far_ahead_is_refused_per_event_with_its_reason(client):
    ahead = event("late-clock", "i1", ts=now_ms() + 3 * 86_400_000)
    seconds = event("secs", "i1", ts=now_ms() // 1000)
    resp = await client.post("/v1/events", json=[event("ok", "i1"), ahead, seconds])
    body = await resp.json()
    assert resp.status == 200 and body["accepted"] == 1
    reasons = {r["event_id"]: r["error"] for r in body["rejected"]}
    assert "ahead of the server's clock" in reasons["late-clock"]
    assert "looks like Unix seconds" in reasons["secs"]


async def test_a_quantity_the_store_cannot_count_is_refused_at_the_door(client):
    for quantity in (10**17, 1e17):
        purchase = {**event("q", "i1", type="purchase"), "quantity": quantity}
        resp = await client.post("/v1/events", json=[purchase])
        body = await resp.json()
        assert resp.status == 422 and "quantity" in body["rejected"][0]["error"]
        assert "script" not in str(body).lower()


async def test_unknown_items_and_categories_reach_the_stream_but_not_the_live_state(client, model_store):
    from models import artifact
    from server.appkeys import REDIS, SESSIONS

    model = artifact.load_current(model_store)
    known_item, known_cat = model.items.ids[0], model.items.category[0]
    batch = [event("k", known_item, session_id="mix", category=known_cat),
             event("u", "no-such-item", session_id="mix", category="no-such-category"),
             {**event("c", None, session_id="mix", category="x" * 128), "type": "category_view"}]
    body = await (await client.post("/v1/events", json=batch)).json()
    assert body["accepted"] == 3 and body["rejected"] == []
    live = await client.app[SESSIONS].read(user_id=None, session_id="mix", now_ms=now_ms())
    assert [x[0] for x in live.items] == [known_item]
    assert set(live.category_affinity) == {known_cat}
    assert await client.app[REDIS].client.xlen("vt:{g:0}:stream") == 3  # training still sees them
    metrics = await (await client.get("/metrics")).text()
    assert 'vitrine_events_not_live_total{reason="unknown_item"} 1.0' in metrics
    assert 'vitrine_events_not_live_total{reason="unknown_category"} 2.0' in metrics


async def test_one_shopper_cannot_suppress_another_shoppers_event_by_reusing_its_id(client, model_store):
    from models import artifact
    from server.appkeys import SESSIONS

    item = artifact.load_current(model_store).items.ids[1]
    squat = await (await client.post("/v1/events", json=event("order-1", item, session_id="mallory"))).json()
    victim = await (await client.post("/v1/events", json=event("order-1", item, session_id="alice",
                                                               type="purchase"))).json()
    assert squat["accepted"] == 1 and victim["accepted"] == 1 and victim["duplicates"] == []
    live = await client.app[SESSIONS].read(user_id=None, session_id="alice", now_ms=now_ms())
    assert live.purchased == {item}


async def test_an_integral_number_written_as_a_float_is_an_integer(client):
    """JSON Schema's `integer` (the OpenAPI document's) includes 2.0: accepted as 2."""
    body = await (await client.post("/v1/events", json=[{**event("f", "i1"), "ts": float(now_ms()),
                                                          "quantity": 2.0}])).json()
    assert body["accepted"] == 1
    body = await (await client.post("/v1/events", json=[{**event("g", "i1"), "quantity": 2.5}])).json()
    assert "Expected `int`, got `float` - at `$.quantity`" in body["rejected"][0]["error"]
