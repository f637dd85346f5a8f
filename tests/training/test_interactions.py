import numpy as np

from training.eventlog import TYPE_CODE, EventLog
from training.interactions import confidence_matrix

DAY = 86_400_000
W = {"view": 1.0, "add_to_cart": 3.0, "purchase": 6.0}


def _log(rows):
    """rows: (user, item, type, ts_days, quantity, price)."""
    u, i, t, ts, q, p = zip(*rows, strict=True)
    n_users, n_items = max(u) + 1, max(i) + 1
    return EventLog(
        user=np.array(u, np.int32), item=np.array(i, np.int32),
        type=np.array([TYPE_CODE[x] for x in t], np.int8), ts=np.array(ts, np.int64) * DAY + 1,
        quantity=np.array(q, np.int32), price=np.array(p, np.float32),
        user_ids=[f"u{x}" for x in range(n_users)], item_ids=[f"i{x}" for x in range(n_items)],
        item_category=[None] * n_items, item_price=np.full(n_items, np.nan, np.float32),
        item_in_stock=np.ones(n_items, bool))


def test_weights_sum_per_pair_and_returns_remove_the_positive():
    log = _log([(0, 0, "view", 1, 1, 9), (0, 0, "purchase", 1, 1, 9), (0, 1, "view", 1, 1, 9),
                (0, 1, "purchase", 2, 1, 9), (0, 1, "return", 9, 1, 9),
                (1, 2, "purchase", 1, 2, 9), (1, 2, "return", 5, 1, 9)])
    m = confidence_matrix(log, W).toarray()
    assert m[0, 0] == 7.0
    assert m[0, 1] == 0.0  # bought once, returned once: gone
    assert m[1, 2] == 6.0  # bought two, returned one: still a positive


def test_half_life_decay():
    log = _log([(0, 0, "purchase", 0, 1, 1), (0, 1, "purchase", 10, 1, 1)])
    m = confidence_matrix(log, W, half_life_days=10).toarray()
    assert np.isclose(m[0, 1], 6.0) and np.isclose(m[0, 0], 3.0)
