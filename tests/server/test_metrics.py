"""Metrics of one process: Redis failures counted by operation, events by outcome, latency per
rung. (Across workers: tests/server/test_workers.py.)"""

from __future__ import annotations

import re

from models import artifact
from server.app import create_app
from server.store.embedded import EmbeddedRedis
from tests.server.conftest import event, make_settings


def _value(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (in any order)."""
    total = 0.0
    for found, raw, value in re.findall(r"^(\w+)\{([^}]*)\} (\S+)$", text, re.MULTILINE):
        have = dict(re.findall(r'(\w+)="([^"]*)"', raw))
        if found == name and all(have.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


async def test_redis_failures_events_and_rungs_are_counted(aiohttp_client, model_store, tmp_path):
    server = EmbeddedRedis(tmp_path / "redis").start()
    client = await aiohttp_client(create_app(make_settings(model_store, server.url, tmp_path)))
    item = artifact.load_current(model_store).items.ids[0]
    ok = await client.post("/v1/events", json=[event("m1", item, session_id="m"), {"bad": 1}])
    assert (await ok.json())["accepted"] == 1
    assert (await client.get("/v1/recommendations", params={"session_id": "m"})).status == 200
    server.kill()
    assert (await client.post("/v1/events", json=[event("m2", item, session_id="m")])).status == 503
    assert (await client.get("/v1/recommendations", params={"session_id": "m"})).status == 200
    assert (await client.get("/readyz")).status == 503
    text = await (await client.get("/metrics")).text()
    assert _value(text, "vitrine_events_total", outcome="accepted") == 1
    assert _value(text, "vitrine_events_total", outcome="rejected") == 1
    assert _value(text, "vitrine_events_total", outcome="unavailable") == 1
    for operation in ("ingest", "read", "ping"):
        assert _value(text, "vitrine_redis_errors_total", operation=operation) == 1, operation
    assert _value(text, "vitrine_recommendation_seconds_count") == 2  # per rung, both answers
