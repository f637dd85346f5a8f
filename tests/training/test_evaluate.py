import numpy as np
import pytest

from training.evaluate import ranking_metrics
from training.index import build_index, recall_at_k


def test_recall_is_normalised_by_min_k_targets():
    top = np.arange(100)[None, :]
    m = ranking_metrics(top, [np.array([0, 1, 500])], n_items=1000)
    assert m["recall@20"] == pytest.approx(2 / 3)
    m = ranking_metrics(top, [np.arange(30)], n_items=1000)
    assert m["recall@20"] == 1.0 and m["recall@50"] == 1.0
    assert m["ndcg@100"] == pytest.approx(1.0)


def test_ndcg_rewards_earlier_hits():
    early = ranking_metrics(np.arange(100)[None, :], [np.array([0])], 1000)["ndcg@100"]
    late = ranking_metrics(np.arange(100)[None, :], [np.array([9])], 1000)["ndcg@100"]
    assert early == 1.0 and late == pytest.approx(1 / np.log2(11))
    assert ranking_metrics(np.arange(100)[None, :], [np.array([999])], 1000)["ndcg@100"] == 0


def test_ivf_index_reaches_target_recall_on_clustered_factors():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 16))
    items = (centres[rng.integers(0, 40, 20_000)] + 0.4 * rng.normal(size=(20_000, 16))).astype(np.float32)
    users = (centres[rng.integers(0, 40, 500)] + 0.4 * rng.normal(size=(500, 16))).astype(np.float32)
    index, info = build_index(items, users, exact_max_items=1000, target_recall=0.95)
    assert info.kind == "ivf_flat_ip" and info.recall_at_50 >= 0.95
    flat, flat_info = build_index(items, users, exact_max_items=10**6, target_recall=0.95)
    assert flat_info.kind == "flat_ip"
    _, a = index.search(users[:100], 50)
    _, e = flat.search(users[:100], 50)
    assert recall_at_k(a, e) >= 0.9
