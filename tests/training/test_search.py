"""The model search: it chooses on validation users only, records what it tried, and keeps to
its budget's bounds at scale."""

import numpy as np
import pytest
import scipy.sparse as sp

from training.config import TrainConfig
from training.evaluate import evaluation_users
from training.interactions import confidence_matrix
from training.search import Budget, search_model
from training.synthetic import generate_store

TINY = Budget(als_candidates=3, rungs=(2, 4), eta=3, folds=2, lambdas=(10.0, 100.0), refinements=1,
              blend_weights=(0.0, 0.5, 1.0), exponents=(0.0, 0.2), prior_cs=(0.0, 1.0, 4.0))


@pytest.fixture(scope="module")
def store():
    store = generate_store(n_items=300, n_users=300, n_events=15_000, seed=3)
    config = TrainConfig(eval_holdout_users=25, eval_seeds=2, iterations=4)
    matrix = confidence_matrix(store.log, config.event_weights)
    return store.log, config, matrix


def _without_timing(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "seconds"}


def test_the_search_never_touches_held_out_users(store):
    log, config, matrix = store
    held = evaluation_users(matrix, config)
    assert 25 <= held.size <= 50
    first = search_model(matrix, config, exclude_users=held, log=log, budget=TINY)
    # Replace every held-out user's history by another one: if any stage read those rows
    # (sample, fits, validation, popularity), something recorded would change.
    rng = np.random.default_rng(9)
    lil = matrix.tolil()
    for u in held:
        lil.rows[u] = sorted(rng.choice(matrix.shape[1], 12, replace=False).tolist())
        lil.data[u] = [6.0] * 12
    scrambled = sp.csr_matrix(lil)
    again = search_model(scrambled, config, exclude_users=held, log=log,
                         budget=TINY)
    assert _without_timing(first.record) == _without_timing(again.record) and first.spec == again.spec
    assert first.record["validation"]["excluded_held_out_users"] == held.size
    assert first.record["validation"]["sample_users"] == matrix.shape[0] - held.size


def test_the_search_records_candidates_scores_and_the_winner(store):
    log, config, matrix = store
    result = search_model(matrix, config, exclude_users=evaluation_users(matrix, config), log=log,
                          budget=TINY)
    record, spec = result.record, result.spec
    assert len(record["als"]["candidates"]) == TINY.als_candidates
    first = record["als"]["candidates"][0]  # today's configuration is always a candidate
    assert (first["factors"], first["regularization"], first["alpha"]) == (
        config.factors, config.regularization, config.alpha)
    winner = record["als"]["winner"]
    assert (spec.factors, spec.regularization, spec.alpha, spec.iterations) == (
        winner["factors"], winner["regularization"], winner["alpha"], winner["iterations"])
    assert str(winner["iterations"]) in next(c["scores"] for c in record["als"]["candidates"]
                                             if c["regularization"] == winner["regularization"])
    assert winner["iterations"] >= TINY.rungs[1]  # the first rung screens, it never wins
    assert record["winner"]["family"] == spec.family
    assert record["winner"]["score"] == max(record["families"].values())
    assert len(record["blend"]["candidates"]) == 3 * 2
    prior = next(c for c in record["prior"]["candidates"]
                 if (c["prior_c"], c["prior_power"]) == (spec.blend.prior_c, spec.blend.prior_power))
    assert prior["reaches_popularity"]  # 1- and 2-item sessions at least popularity's Recall@20
    assert result.session_items == record["session_items"]["chosen"]
    assert set(record["session_items"]["curve"]) == {"10", "20", "50", "100", "200"}


def test_at_scale_the_search_samples_users_and_never_costs_more_than_the_configured_fit(store):
    log, config, matrix = store
    scale = TrainConfig(eval_holdout_users=25, eval_seeds=2, iterations=3, factors=32,
                        exact_index_max_items=100, itemitem_max_items=100, search_max_interactions=3_000)
    result = search_model(matrix, scale, exclude_users=evaluation_users(matrix, scale), log=log,
                          budget=Budget(**{**TINY.__dict__, "rungs": (2, 4, 8)}))
    record = result.record
    assert record["validation"]["sample_interactions"] <= 3_000
    assert record["validation"]["sample_users"] < matrix.shape[0] // 2
    assert record["validation"]["folds"] == 1  # the budget shrinks at scale
    assert "skipped" in record["ease"] and result.spec.family == "als"
    assert all(c["factors"] <= 32 for c in record["als"]["candidates"])
    assert result.spec.iterations == 3  # the configured sweeps are the last rung, the one that wins
    assert set(record["als"]["candidates"][0]["scores"]) <= {"2", "3"}
