"""A small model trained by the real trainer on the synthetic store, and apps serving it."""

import time

import pytest

from server.app import create_app
from server.settings import Settings
from training.config import TrainConfig
from training.pipeline import train
from training.synthetic import generate_store


@pytest.fixture(scope="session")
def synthetic_store():
    return generate_store(n_items=1500, n_users=800, n_events=60_000, seed=7)


@pytest.fixture(scope="session")
def model_store(tmp_path_factory, synthetic_store):
    store = tmp_path_factory.mktemp("models")
    train(synthetic_store.log, TrainConfig(store=store, evaluate=False, iterations=10))
    return store


DAY_MS = 86_400_000


@pytest.fixture(scope="session")
def planted_store():
    """A synthetic store with planted customer types (loyal, VIP, slipping, lost, new) and
    consumables with known repurchase cycles, whose log ends today: the published segments,
    churn probabilities and cycles are the trainer's, and live events sent now continue the
    same customers' histories."""
    end = int(time.time() * 1000) // DAY_MS * DAY_MS  # today, midnight UTC
    return generate_store(n_items=1500, n_users=1500, n_events=150_000, seed=3, days=365,
                          customer_types=True, start_ms=end - 365 * DAY_MS)


@pytest.fixture(scope="session")
def planted_models(tmp_path_factory, planted_store):
    store = tmp_path_factory.mktemp("planted-models")
    train(planted_store.log, TrainConfig(store=store, evaluate=False, iterations=10))
    return store


def make_settings(model_store, redis_url, tmp_path, **overrides) -> Settings:
    """Settings for a test app; `overrides` by dotted name: `**{"security.admin_token": "x"}`.
    A generous deadline: CI machines are noisy and these tests check behaviour, not speed."""
    return Settings().replace(**{"model.store": model_store, "redis.url": redis_url, "data.dir": tmp_path,
                                 "recommend.deadline_ms": 500, "model.reload_interval_s": 0.05,
                                 "recommend.trending_refresh_s": 0.05, **overrides})


@pytest.fixture
async def client(aiohttp_client, model_store, redis_url, tmp_path):
    return await aiohttp_client(create_app(make_settings(model_store, redis_url, tmp_path)))


async def until(check, timeout_s: float = 3.0, interval_s: float = 0.02):
    """Poll `check()` (async) until it returns something truthy; that value, or the last one."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval_s)


def now_ms() -> int:
    return int(time.time() * 1000)


def event(event_id, item_id, *, type="view", session_id="s1", user_id=None, category=None, ts=None):
    body = {"event_id": event_id, "session_id": session_id, "type": type, "item_id": item_id,
            "ts": ts or now_ms()}
    if user_id:
        body["user_id"] = user_id
    if category:
        body["category"] = category
    return body
