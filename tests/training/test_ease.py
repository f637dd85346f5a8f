import numpy as np
import scipy.sparse as sp

from models.itemitem import session_scores
from training.ease import ease_input, ease_neighbours, fit_ease


def _interactions(seed: int, users: int = 120, items: int = 40) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    m = sp.random(users, items, density=0.15, random_state=rng, format="csr", dtype=np.float32)
    m.data[:] = rng.choice([1.0, 3.0, 6.0], m.nnz)
    m = sp.hstack([m, sp.csr_matrix((users, 3), dtype=np.float32)]).tocsr()  # 3 items nobody touched
    return m


def _closed_form(x: sp.csr_matrix, lam: float) -> np.ndarray:
    """Steck 2019: P = (XᵀX + λI)⁻¹, B = I − P·diag(1/diag P), i.e. B_ij = −P_ij/P_jj, B_jj = 0."""
    g = (x.T @ x).toarray().astype(np.float64)
    p = np.linalg.inv(g + lam * np.eye(g.shape[0]))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b


def test_all_neighbours_kept_is_eases_closed_form():
    m = _interactions(0)
    x = ease_input(m, saturation=1.0)
    assert set(np.unique(x.data)) == {1.0}  # any undecayed positive counts 1
    active = 40
    neighbours = ease_neighbours(x, 5.0, k=active - 1)
    dense = np.zeros((43, 43))
    for i in range(43):
        cols, vals = neighbours.row(i)
        dense[i, cols] = vals
    np.testing.assert_allclose(dense[:active, :active], _closed_form(x[:, :active], 5.0), atol=2e-5)
    assert not dense[active:].any() and not dense[:, active:].any()


def test_each_item_keeps_its_strongest_weights_and_sessions_sum_them():
    m = _interactions(1)
    full = _closed_form(ease_input(m, 1.0)[:, :40], 10.0)
    neighbours = fit_ease(m, lam=10.0, neighbours=5, saturation=1.0)
    for i in range(40):
        cols, vals = neighbours.row(i)
        assert cols.size == 5 and np.all(np.diff(cols) > 0)
        strongest = np.sort(np.abs(full[i]))[-5:]
        np.testing.assert_allclose(np.sort(np.abs(vals)), strongest, rtol=1e-4)
    items, scores = session_scores(neighbours, np.array([0, 1]), np.array([1.0, 1.0]))
    dense = np.zeros(43)
    for i in (0, 1):
        cols, vals = neighbours.row(i)
        dense[cols] += vals
    np.testing.assert_allclose(scores, dense[items], rtol=1e-6)
