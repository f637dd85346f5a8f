import numpy as np
import pytest

from models import ranking
from models.ranking import (
    DEFAULT_SESSION_ITEMS,
    SessionBlend,
    prior_weight,
    rank_session,
    session_items_cap,
)

N_ITEMS = 200


def _inputs(seed: int):
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(N_ITEMS, 8))
    query = rng.normal(size=8)
    popularity = rng.integers(1, 1000, N_ITEMS).astype(np.float32)
    popular = np.argsort(-popularity, kind="stable")
    itemitem_items = np.sort(rng.choice(N_ITEMS, 40, replace=False))
    itemitem = (itemitem_items, rng.normal(size=40))
    candidates = np.argsort(-(factors @ query))[:50]
    return factors, query, popularity, popular, candidates, itemitem


def _rank(blend, n, seed=0, **overrides):
    factors, query, popularity, popular, candidates, itemitem = _inputs(seed)
    kwargs = dict(popularity=popularity, popular=popular, depth=50, foldin_candidates=candidates,
                  foldin_scores=lambda rows: factors[rows] @ query, itemitem=itemitem)
    return rank_session(blend, n, **{**kwargs, **overrides})


def test_prior_weight_is_one_for_an_empty_session_and_falls_as_it_grows():
    assert prior_weight(0, 0.0) == prior_weight(0, 3.0) == 1.0
    assert prior_weight(1, 2.0) == pytest.approx(2 / 3) and prior_weight(6, 2.0) == pytest.approx(0.25)
    assert prior_weight(5, 0.0) == 0.0


def test_the_default_blend_ranks_by_the_fold_in_alone_as_before():
    # A manifest without serving.blend (formats 1, 2) must serve what it served: the ALS
    # candidates by inner product, whatever the item-item part says.
    factors, query, *_ = _inputs(0)
    items, _ = _rank(SessionBlend.from_manifest({}), 5)
    assert items.tolist() == np.argsort(-(factors @ query))[:50].tolist()


def test_an_empty_session_gets_the_popularity_list():
    _, _, popularity, popular, *_ = _inputs(0)
    items, _ = _rank(SessionBlend(prior_c=0.0), 0, foldin_candidates=None, foldin_scores=None, itemitem=None)
    assert items.tolist() == popular[:50].tolist()


def test_the_prior_leads_short_sessions_and_fades_in_long_ones():
    _, _, popularity, popular, *_ = _inputs(0)
    blend = SessionBlend(prior_c=50.0)
    short, _ = _rank(blend, 1)
    long, _ = _rank(blend, 10**7)
    no_prior, _ = _rank(SessionBlend(), 10**7)
    top_popular = set(popular[:10].tolist())
    assert len(top_popular & set(short[:10].tolist())) >= 8
    assert long[:10].tolist() == no_prior[:10].tolist()


def test_the_item_item_part_alone_ranks_by_its_scores_and_falls_back_to_the_fold_in():
    _, _, _, _, _, (ii_items, ii_scores) = _inputs(0)
    items, _ = _rank(SessionBlend(foldin_weight=0.0), 3)
    best = ii_items[np.argsort(-ii_scores, kind="stable")]
    assert items[:10].tolist() == best[:10].tolist()
    # A session whose items have no neighbours is ranked by the fold-in instead of nothing.
    fallback, _ = _rank(SessionBlend(foldin_weight=0.0), 3, itemitem=(np.zeros(0, np.int64), np.zeros(0)))
    assert fallback.tolist() == _rank(SessionBlend(), 3)[0].tolist()


@pytest.mark.parametrize("seed", range(3))
def test_a_blend_does_not_depend_on_either_models_score_scale(seed):
    factors, query, popularity, popular, candidates, (ii_items, ii_scores) = _inputs(seed)
    blend = SessionBlend(foldin_weight=0.4, popularity_exponent=0.1, prior_c=2.0)
    a, sa = _rank(blend, 3, seed=seed)
    b, sb = _rank(blend, 3, seed=seed, foldin_scores=lambda rows: 7.0 * (factors[rows] @ query),
                  itemitem=(ii_items, 0.01 * ii_scores))
    assert a.tolist() == b.tolist()
    np.testing.assert_allclose(sa, sb)


def test_a_blend_mixes_both_models():
    alone_foldin, _ = _rank(SessionBlend(), 3)
    alone_itemitem, _ = _rank(SessionBlend(foldin_weight=0.0), 3)
    mixed, _ = _rank(SessionBlend(foldin_weight=0.5), 3)
    top = set(mixed[:20].tolist())
    assert top & set(alone_foldin[:20].tolist()) and top & set(alone_itemitem[:20].tolist())
    assert mixed[:20].tolist() not in (alone_foldin[:20].tolist(), alone_itemitem[:20].tolist())


def test_faiss_padding_is_never_a_candidate():
    factors, query, *_ = _inputs(0)
    padded = np.r_[np.argsort(-(factors @ query))[:5], [-1, -1]]
    items, _ = _rank(SessionBlend(), 3, foldin_candidates=padded)
    assert items.tolist() == padded[:5].tolist()


def test_the_manifest_says_how_many_recent_items_to_fold_in():
    assert session_items_cap({}) == DEFAULT_SESSION_ITEMS == 50
    assert session_items_cap({"serving": {"session_items": 200}}) == 200
    blend = SessionBlend(foldin_weight=0.5, popularity_exponent=0.1, prior_c=2.0)
    assert SessionBlend.from_manifest({"serving": {"blend": blend.as_dict()}}) == blend


def test_a_squared_prior_fades_faster_once_the_session_has_items():
    assert prior_weight(1, 2.0, 2.0) == prior_weight(1, 2.0, 1.0)
    assert prior_weight(10, 2.0, 2.0) == pytest.approx(2 / 102)
    assert prior_weight(10, 2.0, 1.0) == pytest.approx(2 / 12)


def test_distinct_is_numpys_unique():
    rng = np.random.default_rng(3)
    for size in (0, 1, 2, 7, 315):
        a = rng.integers(-1, 50, size)
        assert np.array_equal(ranking._distinct(a), np.unique(a))
