import numpy as np
import pytest

from models.itemitem import Neighbours, item_values, scores_at, session_items, session_scores, similar_items


def _random_neighbours(seed: int, n_items: int = 60, k: int = 7) -> tuple[Neighbours, np.ndarray]:
    """Sparse rows (some empty) and the same weights as a dense matrix."""
    rng = np.random.default_rng(seed)
    dense = np.zeros((n_items, n_items), dtype=np.float32)
    for i in range(n_items):
        if i % 5 == 4:
            continue  # an item without neighbours
        cols = rng.choice(n_items, k, replace=False)
        dense[i, cols] = rng.normal(size=k)
    indptr = np.r_[0, np.cumsum((dense != 0).sum(axis=1))].astype(np.int64)
    rows, cols = np.nonzero(dense)
    return Neighbours(indptr, cols.astype(np.int32), dense[rows, cols]), dense


@pytest.mark.parametrize("seed", range(5))
def test_session_scores_are_the_weighted_sum_of_the_items_rows(seed):
    neighbours, dense = _random_neighbours(seed)
    rng = np.random.default_rng(100 + seed)
    items = rng.choice(60, 6)  # duplicates allowed: the sum is linear
    values = rng.random(6)
    got_items, got_scores = session_scores(neighbours, items, values)
    expected = values @ dense[items].astype(np.float64)
    touched = np.flatnonzero((dense[items] != 0).any(axis=0))
    assert got_items.tolist() == touched.tolist()  # every item some session item points to, ascending
    np.testing.assert_allclose(got_scores, expected[touched], rtol=1e-6)
    everything = scores_at(got_items, got_scores, np.arange(60))
    np.testing.assert_allclose(everything, expected, rtol=1e-6, atol=1e-9)


def test_sessions_without_neighbours_score_nothing():
    neighbours, _ = _random_neighbours(0)
    for items in (np.array([], np.int64), np.array([4, 9])):  # rows 4 and 9 are empty
        got_items, got_scores = session_scores(neighbours, items, np.ones(items.size))
        assert got_items.size == got_scores.size == 0
        assert scores_at(got_items, got_scores, np.array([1, 2])).tolist() == [0.0, 0.0]


def test_session_values_sum_an_items_events_before_saturating():
    # Two views (weight 1 each, decayed to 0.4 and 0.3) of item 7, a purchase of item 3, a
    # removed item (weight 0) dropped; saturation at the view's weight.
    items, values = session_items(np.array([7, 3, 7, 9]), np.array([0.4, 6.0, 0.3, 0.0]), saturation=1.0)
    assert items.tolist() == [3, 7]
    np.testing.assert_allclose(values, [1.0, 0.7])
    np.testing.assert_allclose(item_values(np.array([0.5, 1.0, 6.0]), 2.0), [0.25, 0.5, 1.0])


def test_similar_items_are_the_strongest_positive_neighbours():
    # Item 0's row: item 2 (-2.0: pushed down, never "similar"), item 3 (0.5), item 5 (0.9).
    neighbours = Neighbours(np.array([0, 3, 3], np.int64), np.array([2, 3, 5], np.int32),
                            np.array([-2.0, 0.5, 0.9], np.float32))
    items, weights = similar_items(neighbours, 0, k=5)
    assert items.tolist() == [5, 3] and weights.tolist() == pytest.approx([0.9, 0.5])
    assert similar_items(neighbours, 0, k=1)[0].tolist() == [5]
    assert similar_items(neighbours, 1, k=5)[0].size == 0
