"""A model trained on a synthetic store with planted customer types (loyal, VIP, slipping, lost,
new) and consumables with known repurchase cycles, whose log ends today: the published
segments, churn probabilities and cycles are those of the trainer, and live events sent now
continue the same customers' histories."""

import time

import pytest

from training.config import TrainConfig
from training.pipeline import train
from training.synthetic import generate_store

DAY_MS = 86_400_000


@pytest.fixture(scope="session")
def planted_store():
    end = int(time.time() * 1000) // DAY_MS * DAY_MS  # today, midnight UTC
    return generate_store(n_items=1500, n_users=1500, n_events=150_000, seed=3, days=365,
                          customer_types=True, start_ms=end - 365 * DAY_MS)


@pytest.fixture(scope="session")
def planted_models(tmp_path_factory, planted_store):
    store = tmp_path_factory.mktemp("planted-models")
    train(planted_store.log, TrainConfig(store=store, evaluate=False, iterations=10))
    return store
