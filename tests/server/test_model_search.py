"""ServingModel.search answers what the published FAISS index answers, whatever its kind."""

import numpy as np
import pytest

from models import artifact
from models.foldin import gram_matrix
from server.recommend.model import ServingModel
from training.index import build_index


def _serving(tmp_path, items: np.ndarray, users: np.ndarray, exact_max_items: int) -> ServingModel:
    index, info = build_index(items, users, exact_max_items=exact_max_items, target_recall=0.95)
    n, k = items.shape
    version = "20260101T000000Z-00000001"

    def write(directory):
        artifact.write_artifact(
            directory,
            manifest={"version": version, "index": info.as_dict(), "created": "2026-01-01T00:00:00+00:00",
                      "counts": {},
                      "params": {"event_weights": {"view": 1.0}, "regularization": 0.05, "alpha": 2.0}},
            items=artifact.ItemMeta(ids=[f"i{i}" for i in range(n)], category=["c"] * n, price=np.ones(n),
                                    in_stock=np.ones(n, bool), consumable=np.zeros(n, bool)),
            item_factors=items, user_ids=["u0"], user_factors=users[:1],
            popularity=np.arange(n, dtype=np.float32), gram=gram_matrix(items), index=index)

    artifact.publish(tmp_path, version, write)
    return ServingModel.from_artifact(artifact.load_current(tmp_path))


def _factors(n_items: int, skewed: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(30, 16))
    items = (centres[rng.integers(0, 30, n_items)] + 0.4 * rng.normal(size=(n_items, 16))).astype(np.float32)
    if skewed:  # ALS-like norms: a few long vectors, a long tail of short ones
        items *= rng.lognormal(0.0, 1.5, n_items).astype(np.float32)[:, None]
    users = (centres[rng.integers(0, 30, 300)] + 0.4 * rng.normal(size=(300, 16))).astype(np.float32)
    return items, users


@pytest.mark.parametrize(("kind", "skewed", "exact_max"), [
    ("flat_ip", False, 10**6), ("norm_head_ip", True, 5_000), ("ivf_fp16_ip", False, 1_000)])
def test_search_matches_the_faiss_index(tmp_path, kind, skewed, exact_max):
    items, users = _factors(8_000, skewed)
    model = _serving(tmp_path, items, users, exact_max)
    assert model.art.manifest["index"]["kind"] == kind
    assert (model.scan_vectors is None) == (kind == "ivf_fp16_ip")
    for q in users[:40]:
        scores, rows = model.search(q, 30)
        want_scores, want_rows = model.art.index.search(q[None, :], 30)
        assert rows.tolist() == want_rows[0].tolist()
        np.testing.assert_allclose(scores, want_scores[0], rtol=1e-4, atol=1e-5)
        assert (np.diff(scores) <= 0).all()
        # Scores are the inner products with the item rows returned.
        np.testing.assert_allclose(scores, items[rows] @ q, rtol=1e-2, atol=1e-3)


def test_exact_scan_returns_all_items_when_asked_for_more(tmp_path):
    items, users = _factors(50, skewed=False)
    model = _serving(tmp_path, items, users, 10**6)
    scores, rows = model.search(users[0], 80)
    assert sorted(rows.tolist()) == list(range(50)) and (np.diff(scores) <= 0).all()


def test_category_scores_are_the_inner_products_cached_or_not(tmp_path, monkeypatch):
    from server.recommend import caches as caches_module

    items, users = _factors(3_000, skewed=True)
    model = _serving(tmp_path, items, users, 10**6)
    caches = caches_module.Caches(model)
    pools = {0: np.arange(0, 3_000, 7), 1: np.arange(5, 900, 3)}
    monkeypatch.setattr(caches_module, "CATEGORY_BLOCKS_MAX_BYTES", pools[0].size * 16 * 4)
    for _ in range(2):  # the first call copies the block (if it fits), the second reads it
        for code, pool in pools.items():
            np.testing.assert_allclose(caches.category_scores(model, code, pool, users[0]),
                                       items[pool] @ users[0], rtol=1e-5, atol=1e-6)
    assert list(caches.category_blocks) == [0]  # the second block was over the budget
