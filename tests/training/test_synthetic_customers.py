import numpy as np
import pytest

from training.eventlog import TYPE_CODE
from training.synthetic import generate_store
from training.synthetic_customers import CUSTOMER_TYPES, LOST, NEW, SLIPPING

DAY = 86_400_000
BUY = TYPE_CODE["purchase"]


@pytest.fixture(scope="module")
def planted():
    return generate_store(n_items=1500, n_users=1500, n_events=400_000, days=365, seed=2,
                          customer_types=True)


def _last_event(log, users, mask=None):
    mask = np.ones(len(log), bool) if mask is None else mask
    last = np.full(log.n_users, -1, np.int64)
    np.maximum.at(last, log.user[mask], log.ts[mask])
    return last[users]


def test_planted_types_shape_each_timeline(planted):
    log, kind = planted.log, planted.customer_type
    end = log.ts.max()
    assert set(np.unique(kind)) == set(range(len(CUSTOMER_TYPES)))
    lost = np.flatnonzero(kind == LOST)
    assert ((end - _last_event(log, lost)) > 190 * DAY).all()  # nothing at all after they stopped
    new = np.flatnonzero(kind == NEW)
    first = np.full(log.n_users, np.iinfo(np.int64).max)
    np.minimum.at(first, log.user, log.ts)
    assert ((end - first[new]) < 31 * DAY).all()
    # slipping shoppers bought far less in the last 60 days than in the 60 days before the slide
    buys = log.type == BUY
    recent = buys & (log.ts > end - 60 * DAY)
    before = buys & (log.ts > end - 220 * DAY) & (log.ts <= end - 160 * DAY)
    slip = kind[log.user] == SLIPPING
    assert (recent & slip).sum() < 0.25 * (before & slip).sum()


def test_consumables_are_rebought_on_their_planted_cycle(planted):
    log, cycles = planted.log, planted.item_cycle_days
    assert (np.isfinite(cycles) == log.item_consumable).all()
    buys = log.select((log.type == BUY) & np.isfinite(cycles[np.maximum(log.item, 0)]) & (log.item >= 0))
    order = np.lexsort((buys.ts, buys.item, buys.user))
    u, i, ts = buys.user[order], buys.item[order], buys.ts[order]
    same = (u[1:] == u[:-1]) & (i[1:] == i[:-1])
    ratio = np.diff(ts)[same] / DAY / cycles[i[1:][same]]
    ratio = ratio[ratio > 0.5]  # same-week re-buys from browsing are not the routine
    assert ratio.size > 1000 and abs(np.median(ratio) - 1) < 0.05


def test_default_store_has_no_plant_and_short_stores_refuse_one():
    store = generate_store(n_items=200, n_users=100, n_events=3_000)
    assert store.customer_type is None and store.item_cycle_days is None
    with pytest.raises(ValueError, match="a year"):
        generate_store(n_items=200, n_users=100, n_events=3_000, customer_types=True)
