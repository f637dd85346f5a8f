import math

import numpy as np

from models.repurchase import DAY_MS, due_items, dueness, history, not_yet_due

NOW = 1_800_000_000_000
CYCLES = np.array([30.0, 14.0, np.nan, 60.0, 10.0], np.float32)


def _ago(days: float) -> int:
    return int(NOW - days * DAY_MS)


def test_due_items_are_those_near_their_cycle_closest_first():
    purchases = [(0, _ago(29)), (1, _ago(16)), (2, _ago(30)), (3, _ago(20)), (4, _ago(30))]
    assert [i for i, _ in due_items(purchases, CYCLES, NOW, k=10)] == [0, 1]
    assert due_items(purchases, CYCLES, NOW, k=1)[0][0] == 0
    assert math.isclose(due_items(purchases, CYCLES, NOW, k=1)[0][1], 29 / 30, rel_tol=1e-6)


def test_the_latest_purchase_of_an_item_counts():
    assert due_items([(0, _ago(31)), (0, _ago(2))], CYCLES, NOW, k=5) == []
    assert [i for i, _ in due_items([(0, _ago(2)), (0, _ago(31))], CYCLES, NOW, k=5)] == []


def test_not_yet_due_hides_recent_consumables_only():
    purchases = [(0, _ago(5)), (1, _ago(14)), (2, _ago(1)), (3, _ago(70))]
    assert not_yet_due(purchases, CYCLES, NOW) == {0}
    assert math.isnan(dueness(_ago(3), float("nan"), NOW))


def test_history_reads_one_customers_rows():
    rep = {"user_indptr": np.array([0, 2, 2, 3]), "items": np.array([4, 1, 0], np.int32),
           "last_ms": np.array([10, 20, 30], np.int64)}
    assert history(rep, 0) == [(4, 10), (1, 20)] and history(rep, 1) == [] and history(rep, 2) == [(0, 30)]
