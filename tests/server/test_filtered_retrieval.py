"""Filtered retrieval: an include-only filter's candidates are the best allowed items, exactly
when the filter keeps at most `scan` items, from the largest-norm ones otherwise."""

import numpy as np
import pytest

from server.recommend.filtered import WIDE, AllowedSet, allowed_candidates, filtered_candidates
from tests.server.small_model import N_ITEMS, small_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("model"))


def _best(model, rows, vec, n):
    scores = model.item_factors[rows] @ vec
    return set(rows[np.argsort(-scores)[:n]].tolist())


def test_a_filter_within_the_scan_is_searched_exactly(model):
    rng = np.random.default_rng(1)
    mask = rng.random(N_ITEMS) < 0.05
    allowed = AllowedSet(model, mask, scan=500)
    assert allowed.exact and allowed.size == mask.sum()
    shown = np.ones(N_ITEMS + 10, bool)
    for vec in rng.normal(size=(20, model.item_factors.shape[1])).astype(np.float32):
        items, scores = filtered_candidates(allowed, vec, 10, shown)
        assert set(items.tolist()) == _best(model, np.flatnonzero(mask), vec, 10)
        assert np.allclose(scores, model.item_factors[items] @ vec, atol=1e-5)


def test_not_shown_items_and_other_categories_leave_room_for_the_next(model):
    rng = np.random.default_rng(2)
    mask = rng.random(N_ITEMS) < 0.5
    allowed = AllowedSet(model, mask, scan=5_000)
    vec = rng.normal(size=model.item_factors.shape[1]).astype(np.float32)
    first, _ = filtered_candidates(allowed, vec, 10, np.ones(N_ITEMS, bool))
    shown = np.ones(N_ITEMS, bool)
    shown[first[:5]] = False  # out of stock: the next best take their places
    items, _ = filtered_candidates(allowed, vec, 10, shown)
    assert len(items) == 10 and not set(first[:5].tolist()) & set(items.tolist())
    in_c3, _ = filtered_candidates(allowed, vec, 10, shown, model.item_category, 3)
    assert (model.item_category[in_c3] == 3).all()
    rows = np.flatnonzero(mask & shown[:N_ITEMS] & (model.item_category == 3))
    assert set(in_c3.tolist()) == _best(model, rows, vec, 10)


def test_a_filter_larger_than_the_scan_keeps_its_largest_norm_items(model):
    mask = np.ones(N_ITEMS, bool)
    allowed = AllowedSet(model, mask, scan=300)
    assert not allowed.exact and allowed.size == N_ITEMS and allowed.rows.size == 300
    threshold = np.sort(model.item_norms)[-300]
    assert (model.item_norms[allowed.rows] >= threshold).all()


def test_a_wide_filter_takes_the_index_nearest_and_drops_the_rest(model):
    rng = np.random.default_rng(4)
    mask = rng.random(N_ITEMS) < 0.8
    allowed = AllowedSet(model, mask, scan=100)
    assert allowed.share >= WIDE
    vec = rng.normal(size=model.item_factors.shape[1]).astype(np.float32)
    items, scores = allowed_candidates(model, allowed, vec, 20, np.ones(N_ITEMS, bool))
    assert mask[items].all() and len(items) >= 20
    assert _best(model, np.flatnonzero(mask), vec, 10) <= set(items.tolist())  # the index is exact here
