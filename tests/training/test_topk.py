import numpy as np
import pytest

from training.topk import exact_top_k


@pytest.mark.parametrize(("n", "k", "block"), [(10, 5, 4), (10, 10, 4), (10, 20, 4), (5000, 50, 64),
                                              (20_000, 300, 1024)])
def test_exact_top_k_matches_a_full_sort(n, k, block):
    rng = np.random.default_rng(n)
    items = rng.normal(size=(n, 8)).astype(np.float32)
    queries = rng.normal(size=(30, 8)).astype(np.float32)
    expected = np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(exact_top_k(queries, items, k, block=block), expected)


def test_exact_top_k_on_items_sorted_worst_first():
    # Scores rising along the catalog: every block beats the running threshold.
    items = np.linspace(0.1, 1.0, 3000, dtype=np.float32)[:, None]
    assert exact_top_k(np.ones((2, 1), np.float32), items, 5, block=100).tolist() == [
        [2999, 2998, 2997, 2996, 2995]] * 2
