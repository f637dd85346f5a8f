"""A small published model with random factors (no training): 2,000 items in 8 categories
(`c0`..`c7`, item `i<n>` in `c<n % 8>`), popularity rising with the item number."""

import numpy as np

from models import artifact
from models.foldin import gram_matrix
from server.recommend.model import ServingModel
from training.index import build_index

N_ITEMS, N_USERS, K = 2_000, 50, 16


def small_model(directory, *, segments: dict | None = None) -> ServingModel:
    rng = np.random.default_rng(3)
    items = rng.normal(size=(N_ITEMS, K)).astype(np.float32)
    users = rng.normal(size=(N_USERS, K)).astype(np.float32)
    index, info = build_index(items, users, exact_max_items=10**6, target_recall=0.95)
    version = "20260101T000000Z-00000001"

    def write(out):
        artifact.write_artifact(
            out,
            manifest={"version": version, "index": info.as_dict(), "created": "2026-01-01T00:00:00+00:00",
                      "counts": {},
                      "params": {"event_weights": {"view": 1.0, "add_to_cart": 4.0, "purchase": 10.0},
                                 "regularization": 0.05, "alpha": 2.0}},
            items=artifact.ItemMeta(ids=[f"i{i}" for i in range(N_ITEMS)],
                                    category=[f"c{i % 8}" for i in range(N_ITEMS)],
                                    price=np.arange(N_ITEMS, dtype=np.float32) % 100,
                                    in_stock=np.ones(N_ITEMS, bool), consumable=np.zeros(N_ITEMS, bool)),
            item_factors=items, user_ids=[f"u{i}" for i in range(N_USERS)], user_factors=users,
            popularity=np.arange(N_ITEMS, dtype=np.float32), gram=gram_matrix(items), index=index,
            segments=segments)

    artifact.publish(directory, version, write)
    return ServingModel.from_artifact(artifact.load_current(directory))
