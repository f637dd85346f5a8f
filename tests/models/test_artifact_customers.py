import faiss
import numpy as np
import pytest

from models import artifact
from models.foldin import gram_matrix
from models.rfm import published_stats

VERSION = "20260101T000000Z-0000000a"


def _publish(store, **optional):
    n_items, k = 20, 4
    y = np.random.default_rng(0).normal(size=(n_items, k)).astype(np.float32)
    index = faiss.IndexFlatIP(k)
    index.add(y)

    def write(directory):
        artifact.write_artifact(
            directory, manifest={"version": VERSION, "created": "2026-01-01T00:00:00+00:00", "counts": {},
                                 "params": {"event_weights": {"view": 1.0}, "regularization": 0.05,
                                            "alpha": 2.0}},
            items=artifact.ItemMeta(ids=[f"i{i}" for i in range(n_items)], category=["c"] * n_items,
                                    price=np.ones(n_items), in_stock=np.ones(n_items, bool),
                                    consumable=np.zeros(n_items, bool)),
            item_factors=y, user_ids=["u0", "u1"], user_factors=np.zeros((2, k), np.float32),
            popularity=np.ones(n_items, np.float32), gram=gram_matrix(y), index=index, **optional)
    artifact.publish(store, VERSION, write)
    return artifact.load_current(store)


def test_artifacts_without_customer_files_or_with_old_segments_still_load(tmp_path):
    model = _publish(tmp_path / "a")
    assert model.segments is None and model.repurchase is None
    old = {"as_of_ms": 1, "users": ["u0"], "r": [5], "f": [1], "m": [3], "segment": ["new"],
           "churn_risk": ["low"]}  # format 1: labels only
    model = _publish(tmp_path / "b", segments=old)
    assert model.segments["segment"] == ["new"] and published_stats(model.segments, 0) is None


def test_repurchase_arrays_roundtrip_and_are_checked_against_the_ids(tmp_path):
    rep = {"cycle_days": np.full(20, np.nan, np.float32), "cycle_source": np.zeros(20, np.int8),
           "user_indptr": np.array([0, 1, 1]), "items": np.array([3], np.int32),
           "last_ms": np.array([42], np.int64), "orders": np.array([1], np.int32)}
    model = _publish(tmp_path / "a", repurchase=rep)
    assert model.repurchase["items"].tolist() == [3] and model.repurchase["user_indptr"].shape == (3,)
    with pytest.raises(artifact.ArtifactError, match="repurchase"):
        _publish(tmp_path / "b", repurchase={**rep, "user_indptr": np.array([0, 1])})
