import numpy as np
import pytest

from models import artifact
from models.repurchase import due_items, history
from models.rfm import RfmEdges, customer_features, published_stats
from models.segments import DEFAULT_RULES, parse_rules
from training.churn import train_churn
from training.config import TrainConfig
from training.eventlog import TYPE_CODE, EventLog
from training.pipeline import train
from training.repurchase import learn_cycles, purchase_history
from training.segments import segment_customers
from training.synthetic import generate_store
from training.synthetic_customers import CUSTOMER_TYPES

DAY = 86_400_000


@pytest.fixture(scope="module")
def planted():
    return generate_store(n_items=1500, n_users=2000, n_events=500_000, days=365, seed=3,
                          customer_types=True)


def _assigned(store, segments):
    index = {u: i for i, u in enumerate(store.log.user_ids)}
    out = np.full(store.log.n_users, "prospect", dtype=object)
    out[[index[u] for u in segments["users"]]] = segments["segment"]
    return out


def _share(assigned, kind, store, names):
    mine = assigned[store.customer_type == CUSTOMER_TYPES.index(kind)]
    return np.isin(mine, names).mean()


def test_default_rules_recover_the_planted_types(planted):
    assigned = _assigned(planted, segment_customers(planted.log, DEFAULT_RULES))
    assert _share(assigned, "vip", planted, ["vip"]) >= 0.85
    assert _share(assigned, "loyal", planted, ["loyal"]) >= 0.55
    assert _share(assigned, "loyal", planted, ["loyal", "vip"]) >= 0.75
    assert _share(assigned, "slipping", planted, ["at_risk"]) >= 0.65
    assert _share(assigned, "lost", planted, ["lost", "prospect"]) >= 0.95
    new = assigned[planted.customer_type == CUSTOMER_TYPES.index("new")]
    assert (new[new != "prospect"] == "new").mean() >= 0.95  # those who bought at all


def test_churn_model_beats_recency_on_a_held_out_month(planted):
    result = train_churn(planted.log, window_days=30)
    auc = result.report["auc"]
    assert auc["model"] >= 0.75 and auc["model"] > auc["recency"]
    assert result.report["chosen"] in result.report["validation_auc"]
    # the published probabilities rank the planted types as their timelines say
    p = np.full(planted.log.n_users, np.nan)
    p[result.users] = result.probability
    mean = {k: np.nanmean(p[planted.customer_type == i]) for i, k in enumerate(CUSTOMER_TYPES)}
    assert mean["vip"] < mean["loyal"] < mean["slipping"] < mean["lost"]


def test_churn_is_skipped_with_a_reason_on_a_short_log():
    result = train_churn(generate_store(n_items=300, n_users=200, n_events=10_000).log)
    assert "needs 90" in result.report["skipped"] and result.probability is None


def _log(rows, n_items=3):
    """rows: (user, item, type, day, quantity, price)."""
    u, i, t, d, q, p = zip(*rows, strict=True)
    return EventLog(
        user=np.array(u, np.int32), item=np.array(i, np.int32),
        type=np.array([TYPE_CODE[x] for x in t], np.int8), ts=np.array(d, np.int64) * DAY + 1_000,
        quantity=np.array(q, np.int32), price=np.array(p, np.float32),
        user_ids=[f"u{x}" for x in range(max(u) + 1)], item_ids=[f"i{x}" for x in range(n_items)],
        item_category=["c"] * n_items, item_price=np.full(n_items, np.nan, np.float32),
        item_in_stock=np.ones(n_items, bool))


def test_statistics_count_orders_as_purchase_days_and_spend_as_price_times_quantity():
    rows = [(0, 0, "purchase", 200, 1, 10), (0, 1, "purchase", 200, 2, 5), (0, 0, "purchase", 390, 1, 10),
            (1, 2, "purchase", 100, 1, 900), (2, 0, "view", 399, 1, 10), (0, 2, "view", 400, 1, 1)]
    seg = segment_customers(_log(rows), DEFAULT_RULES)
    assert seg["users"] == ["u0", "u1"]  # u2 never bought
    assert seg["orders"] == [2, 1] and seg["spend"] == [30.0, 900.0]
    assert seg["orders_180d"] == [1, 0] and seg["spend_365d"] == [30.0, 900.0]
    assert seg["segment"] == ["promising", "lost"]


def test_live_evaluation_of_published_statistics_gives_the_trainers_segment(planted):
    seg = segment_customers(planted.log, DEFAULT_RULES,
                            churn_probability=np.linspace(0, 1, planted.log.n_users))
    rules, edges = parse_rules(seg["rules"]), RfmEdges.from_dict(seg["rfm_edges"])
    for row in range(0, len(seg["users"]), 7):
        feats = customer_features(published_stats(seg, row), seg["as_of_ms"], edges)
        assert rules.assign(feats) == seg["segment"][row]
        assert (feats["r"], feats["f"], feats["m"]) == (seg["r"][row], seg["f"][row], seg["m"][row])


def test_learned_cycles_and_buy_again_on_planted_consumables(planted):
    log, truth = planted.log, planted.item_cycle_days
    cycles, source = learn_cycles(log, log.item_consumable)
    cons = log.item_consumable
    assert np.isfinite(cycles[cons]).all() and not np.isfinite(cycles[~cons]).any()
    assert np.median(np.abs(cycles[cons] / truth[cons] - 1)) < 0.05
    hist, now = purchase_history(log), int(log.ts.max())
    shown = due = 0
    for user in range(log.n_users):
        last = dict(history(hist, user))
        for item, _ in due_items(last.items(), cycles, now, k=10):
            shown += 1
            due += 0.8 <= (now - last[item]) / DAY / truth[item] <= 1.2
    assert shown > 100 and due / shown >= 0.7


def test_purchase_history_drops_fully_returned_items():
    rows = [(0, 0, "purchase", 1, 1, 1), (0, 1, "purchase", 2, 1, 1), (0, 1, "return", 5, 1, 1),
            (0, 0, "purchase", 9, 1, 1), (1, 2, "purchase", 3, 2, 1), (1, 2, "return", 4, 1, 1)]
    h = purchase_history(_log(rows))
    assert history(h, 0) == [(0, 9 * DAY + 1_000)] and h["orders"].tolist() == [2, 1]
    assert history(h, 1) == [(2, 3 * DAY + 1_000)]


def test_published_artifact_carries_segments_churn_and_cycles(planted, tmp_path):
    config = TrainConfig(store=tmp_path, evaluate=False, iterations=2, factors=8)
    result = train(planted.log, config)
    customers = result.manifest["customers"]
    assert sum(customers["segments"].values()) == customers["customers"] == planted.log.n_users
    assert customers["segments"]["prospect"] == planted.log.n_users - customers["purchasing_customers"]
    assert customers["churn"]["auc"]["model"] > customers["churn"]["auc"]["recency"]
    model = artifact.load_current(tmp_path)
    seg = model.segments
    probability = np.asarray(seg["churn_probability"])
    assert np.isfinite(probability).all() and ((probability >= 0) & (probability <= 1)).all()
    assert model.repurchase["cycle_days"].shape == (planted.log.n_items,)
    assert model.repurchase["user_indptr"][-1] == model.repurchase["items"].size
