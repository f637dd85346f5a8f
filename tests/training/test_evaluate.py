import faiss
import numpy as np
import pytest

from training.evaluate import TOP, _without_excluded, ranking_metrics
from training.index import HEAD_DEPTH, build_index, norm_head_size, predicted_recall, recall_at_k
from training.topk import exact_top_k


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


def _clustered(seed: int, n_items: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Item and query vectors around 40 shared centres, as ALS factors cluster by taste."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, 16))
    draw = lambda n: (centres[rng.integers(0, 40, n)] + 0.4 * rng.normal(size=(n, 16))).astype(np.float32)  # noqa: E731
    return draw(n_items), draw(n_queries)


def test_ivf_index_reaches_target_recall_on_clustered_factors():
    items, users = _clustered(0, 20_000, 500)
    index, info = build_index(items, users, exact_max_items=1000, target_recall=0.95)
    assert info.kind == "ivf_fp16_ip" and info.recall_at_50 >= 0.95
    flat, flat_info = build_index(items, users, exact_max_items=10**6, target_recall=0.95)
    assert flat_info.kind == "flat_ip"
    _, a = index.search(users[:100], 50)
    _, e = flat.search(users[:100], 50)
    assert recall_at_k(a, e) >= 0.9


def _skewed(seed: int, n_items: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Clustered factors whose norms spread like ALS's: a few popular items with long vectors,
    a long tail of rarely-seen items with short ones."""
    items, queries = _clustered(seed, n_items, n_queries)
    norms = np.random.default_rng(seed).lognormal(0.0, 1.5, n_items).astype(np.float32)
    return items / np.linalg.norm(items, axis=1, keepdims=True) * norms[:, None], queries


def test_norm_head_index_scans_few_items_and_finds_the_exact_neighbours():
    items, users = _skewed(2, 20_000, 500)
    index, info = build_index(items, users, exact_max_items=10_000, target_recall=0.95)
    assert info.kind == "norm_head_ip" and info.head_items <= 20_000 // 5
    assert info.recall_at_50 >= 0.95 and info.recall_at_head_depth >= 0.95
    # It answers item rows, the largest-norm ones, and its recall holds on unseen queries.
    rows = faiss.vector_to_array(index.id_map)
    norms = np.linalg.norm(items, axis=1)
    assert index.ntotal == info.head_items and norms[rows].min() >= np.sort(norms)[-info.head_items]
    fresh = _skewed(3, 20_000, 300)[1]
    assert recall_at_k(index.search(fresh, 50)[1], exact_top_k(fresh, items, 50)) >= 0.93
    # Capped by exact_max_items: then the IVF.
    _, capped = build_index(items, users, exact_max_items=info.head_items - 1, target_recall=0.95)
    assert capped.kind == "ivf_fp16_ip"


def test_norm_head_size_is_the_smallest_head_reaching_the_target():
    items, users = _skewed(4, 5_000, 200)
    exact = exact_top_k(users, items, HEAD_DEPTH)
    order = np.argsort(-np.linalg.norm(items, axis=1), kind="stable")

    def measured(head):
        flat = faiss.IndexFlatIP(items.shape[1])
        flat.add(items[order[:head]])
        return recall_at_k(order[:head][flat.search(users, HEAD_DEPTH)[1]], exact)

    for target in (0.5, 0.9, 0.99):
        head = norm_head_size(order, exact, target)
        assert measured(head) >= target - 1e-6 > measured(head - 1)


def test_predicted_recall_is_what_the_search_measures():
    items, queries = _clustered(1, 20_000, 200)
    index, info = build_index(items, queries, exact_max_items=1000, target_recall=0.95)
    ivf = faiss.extract_index_ivf(index)
    exact = exact_top_k(queries, items, 50)
    steps = [1, 4, 16, 64]
    measured = []
    for nprobe in steps:
        ivf.nprobe = nprobe
        measured.append(recall_at_k(ivf.search(queries, 50)[1], exact))
    assert predicted_recall(ivf, queries, exact, steps) == pytest.approx(measured, abs=1e-3)
    assert measured[0] < 0.9 < measured[-1]  # the steps span the interesting range


def test_excluded_items_are_dropped_and_rows_padded():
    ranked = np.array([[5, 3, 9, -1, 7], [1, 2, 3, 4, 5]])
    out = _without_excluded(ranked, [np.array([3, 7]), np.array([], np.int64)], n_items=10)
    assert out.shape == (2, TOP)
    assert out[0, :3].tolist() == [5, 9, -1] and (out[0, 2:] == -1).all()
    assert out[1, :5].tolist() == [1, 2, 3, 4, 5] and (out[1, 5:] == -1).all()
