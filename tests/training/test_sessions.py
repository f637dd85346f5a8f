"""Evaluation sessions and the trainer's model: offline ranking is the served ranking."""

import numpy as np
import scipy.sparse as sp

from models.foldin import FoldIn, gram_matrix
from models.itemitem import session_items, session_scores
from models.ranking import SessionBlend, rank_session
from training.config import TrainConfig
from training.eventlog import TYPE_CODE, EventLog
from training.interactions import confidence_matrix
from training.recommender import ModelSpec, SessionModel, fit_session_model
from training.sessions import last_event_ms, split_cases
from training.synthetic import generate_store


def _log(users, items, types, ts) -> EventLog:
    n = len(users)
    return EventLog(user=np.array(users, np.int32), item=np.array(items, np.int32),
                    type=np.array([TYPE_CODE[t] for t in types], np.int8), ts=np.array(ts, np.int64),
                    quantity=np.ones(n, np.int32), price=np.full(n, np.nan, np.float32),
                    user_ids=["a", "b"], item_ids=["x", "y", "z"], item_category=[None] * 3,
                    item_price=np.full(3, np.nan, np.float32), item_in_stock=np.ones(3, bool))


def test_last_event_times_follow_the_matrix_entries():
    log = _log([0, 0, 0, 1, 1], [2, 0, 2, 1, -1], ["view", "purchase", "view", "view", "search"],
               [10, 30, 50, 20, 99])
    matrix = confidence_matrix(log, {"view": 1.0, "purchase": 6.0})
    assert matrix.indices.tolist() == [0, 2, 1]
    assert last_event_ms(log, matrix).tolist() == [30, 50, 20]


def test_sessions_keep_their_most_recent_items_and_the_same_targets():
    rng = np.random.default_rng(0)
    matrix = sp.csr_matrix(np.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]], dtype=np.float32))
    last = np.arange(10, dtype=np.int64) * 100  # item i last seen at 100·i
    cases = split_cases(matrix, np.array([0]), 0.8, rng, last)
    folded = cases.items[0]
    assert folded.size == 8 and cases.targets[0].size == 2
    recent = cases.most_recent(3)
    assert sorted(recent.items[0].tolist()) == sorted(folded.tolist())[-3:]
    assert recent.weights[0].tolist() == (recent.items[0] + 1).tolist()  # weights follow their items
    assert recent.targets[0].tolist() == cases.targets[0].tolist()
    assert cases.first(2).items[0].tolist() == folded[:2].tolist()


def _small_model(spec: ModelSpec):
    store = generate_store(n_items=200, n_users=300, n_events=12_000, seed=4)
    config = TrainConfig(factors=8, iterations=3)
    matrix = confidence_matrix(store.log, config.event_weights)
    from training.als import fit_als

    return matrix, fit_session_model(matrix[50:], config, spec, fit_als)[0]


def test_the_configured_als_alone_ranks_as_before_by_inner_product():
    matrix, model = _small_model(ModelSpec.from_config(TrainConfig(factors=8, iterations=3)))
    rows = [matrix.indices[matrix.indptr[u]:matrix.indptr[u + 1]] for u in range(10)]
    weights = [matrix.data[matrix.indptr[u]:matrix.indptr[u + 1]] for u in range(10)]
    top = model.rank(rows, weights, rows, top=20)
    for items, w, got in zip(rows, weights, top, strict=True):
        scores = model.item_factors @ model.foldin(items, w)
        scores[items] = -np.inf
        expected = np.argsort(-scores, kind="stable")[:20]
        assert set(got.tolist()) == set(expected.tolist())


def test_offline_ranking_calls_the_served_functions():
    blend = SessionBlend(foldin_weight=0.5, popularity_exponent=0.1, prior_c=2.0)
    spec = ModelSpec(factors=8, regularization=1.0, alpha=1.0, iterations=3, ease_lambda=20.0,
                     neighbours=20, blend=blend)
    matrix, model = _small_model(spec)
    assert isinstance(model, SessionModel) and model.neighbours is not None
    solve = FoldIn(model.item_factors, gram_matrix(model.item_factors), regularization=1.0, alpha=1.0)
    for u in range(5):
        items = matrix.indices[matrix.indptr[u]:matrix.indptr[u + 1]][:3]
        w = matrix.data[matrix.indptr[u]:matrix.indptr[u + 1]][:3]
        got = model.rank([items], [w], [items], top=20)[0]
        # What the server does for this session, step by step.
        q = solve(items, w)
        candidates = np.argsort(-(model.item_factors @ q), kind="stable")[:20 + items.size]
        distinct, values = session_items(items, w, 1.0)
        served, _ = rank_session(blend, distinct.size, popularity=model.popularity, popular=model.popular,
                                 depth=20 + items.size, foldin_candidates=candidates,
                                 foldin_scores=lambda rows, q=q: model.item_factors[rows] @ q,
                                 itemitem=session_scores(model.neighbours, distinct, values))
        served = served[~np.isin(served, items)][:20]
        assert got.tolist() == served.tolist()


def test_last_event_times_of_a_subset_of_users():
    log = _log([0, 1, 1], [0, 1, 2], ["view", "view", "view"], [5, 7, 9])
    full = confidence_matrix(log, {"view": 1.0})
    rows = full[[1]]
    assert last_event_ms(log, rows, np.array([1])).tolist() == [7, 9]
