import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from models.foldin import fold_in, gram_matrix


@pytest.fixture(scope="module")
def als():
    from implicit.cpu.als import AlternatingLeastSquares

    rng = np.random.default_rng(0)
    m = sp.random(200, 300, density=0.05, format="csr", random_state=1, dtype=np.float32)
    m.data[:] = rng.integers(1, 6, m.nnz)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=16, regularization=0.1, alpha=2.0, iterations=4,
                                        random_state=0)
        model.fit(m, show_progress=False)
    return model


@pytest.mark.parametrize(
    ("items", "weights"),
    [([3], [1.0]), ([3, 10, 77, 150], [1.0, 3.0, 6.0, 1.0]), ([5, 5, 9], [1.0, 2.0, 6.0])],
)
def test_fold_in_matches_implicit_recalculate_user(als, items, weights):
    row = sp.csr_matrix(
        (np.array(weights, np.float32), (np.zeros(len(items), int), np.array(items))), shape=(1, 300))
    with threadpool_limits(1, "blas"):
        expected = als.recalculate_user(0, row)
    got = fold_in(als.item_factors, gram_matrix(als.item_factors), np.array(items), np.array(weights),
                  regularization=als.regularization, alpha=als.alpha)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_fold_in_of_nothing_is_the_zero_vector(als):
    y = als.item_factors
    out = fold_in(y, gram_matrix(y), np.array([], int), np.array([]), regularization=0.1, alpha=2.0)
    assert out.shape == (16,) and not out.any()
    out = fold_in(y, gram_matrix(y), np.array([4]), np.array([0.0]), regularization=0.1, alpha=2.0)
    assert not out.any()


@pytest.mark.parametrize("n", [1, 2, 7, 24, 25, 60])
def test_woodbury_and_direct_solves_agree(als, n, monkeypatch):
    """Session-sized fold-ins take the Woodbury path, larger ones the k×k solve: same vector,
    including decayed weights whose confidence is below 1 (a negative term in the system)."""
    from models import foldin

    y = als.item_factors
    solver = foldin.FoldIn(y, gram_matrix(y), regularization=als.regularization, alpha=als.alpha)
    rng = np.random.default_rng(n)
    idx = rng.choice(y.shape[0], n, replace=False)
    w = rng.uniform(0.01, 4.0, n)  # alpha·w spans both sides of 1
    monkeypatch.setattr(foldin, "WOODBURY_MAX_ITEMS", 10**6)
    woodbury = solver.solve(idx, w)
    monkeypatch.setattr(foldin, "WOODBURY_MAX_ITEMS", 0)
    direct = solver.solve(idx, w)
    assert np.abs(direct).max() > 1e-4
    np.testing.assert_allclose(woodbury, direct, rtol=1e-5, atol=1e-7)
