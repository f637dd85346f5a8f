import json

import numpy as np
import pytest

from models.rfm import DAY_MS, CustomerStats, RfmEdges, customer_features, record_purchase
from models.segments import DEFAULT_RULES, RuleError, load_rules, parse_rules

NOW = 1_800_000_000_000
WINDOWS = DEFAULT_RULES.windows


def _features(orders_days_ago: list[float], spend_each: float = 50.0) -> dict[str, float]:
    stats = None
    for days in sorted(orders_days_ago, reverse=True):
        stats = record_purchase(stats, int(NOW - days * DAY_MS), spend_each, WINDOWS)
    return customer_features(stats, NOW, windows=WINDOWS)


@pytest.mark.parametrize(("orders", "spend", "segment"), [
    ([], 50, "prospect"),
    ([2, 20, 50, 90, 150], 200, "vip"),
    ([2, 20, 50, 90, 150], 50, "loyal"),  # same rhythm, not enough spend for VIP
    ([3, 12], 50, "new"),
    ([10, 100, 300], 50, "promising"),
    ([60, 100, 200, 300], 50, "at_risk"),
    ([60, 300], 50, "dormant"),
    ([200, 400], 50, "lost"),
])
def test_default_rules_name_typical_customers(orders, spend, segment):
    assert DEFAULT_RULES.assign(_features(orders, spend)) == segment


def test_a_dormant_customer_who_buys_changes_segment_at_once():
    stats = None
    for days in (300, 150):
        stats = record_purchase(stats, NOW - days * DAY_MS, 80.0, WINDOWS)
    assert DEFAULT_RULES.assign(customer_features(stats, NOW)) == "dormant"
    stats = record_purchase(stats, NOW - 60_000, 80.0, WINDOWS)
    assert DEFAULT_RULES.assign(customer_features(stats, NOW)) == "promising"


def test_same_day_purchases_are_one_order_and_windows_empty_once_the_last_purchase_left_them():
    day0 = (NOW // DAY_MS) * DAY_MS
    stats = record_purchase(None, day0 + 1_000, 10.0, WINDOWS)
    stats = record_purchase(stats, day0 + 3_600_000, 5.0, WINDOWS)
    assert stats.orders == 1 and stats.spend == 15.0 and stats.window_orders[180] == 1
    later = customer_features(stats, day0 + 200 * DAY_MS, windows=WINDOWS)
    assert later["orders_180d"] == 0.0 and later["orders_365d"] == 1.0 and later["spend_365d"] == 15.0
    assert CustomerStats.from_dict(json.loads(json.dumps(stats.as_dict()))) == stats


def test_scalar_and_vectorized_evaluation_agree():
    rng = np.random.default_rng(3)
    n = 2_000
    feats = {"recency_days": rng.exponential(80, n), "tenure_days": rng.exponential(200, n),
             "orders": rng.integers(0, 12, n).astype(float), "spend": rng.exponential(300, n)}
    for d in WINDOWS:
        feats[f"orders_{d}d"] = rng.integers(0, 8, n).astype(float)
        feats[f"spend_{d}d"] = rng.exponential(200, n)
    many = DEFAULT_RULES.assign_many(feats)
    one = [DEFAULT_RULES.assign({k: float(v[i]) for k, v in feats.items()}) for i in range(n)]
    assert list(many) == one
    assert len(set(one)) >= 6  # the sample exercises most rules


def test_missing_or_nan_feature_makes_a_condition_false():
    rules = parse_rules({"segments": [{"name": "risky", "when": {"churn_probability": {"gt": 0.5}}},
                                      {"name": "rest"}]})
    assert rules.assign({"churn_probability": 0.9}) == "risky"
    assert rules.assign({}) == "rest"
    assert rules.assign({"churn_probability": float("nan")}) == "rest"
    assert list(rules.assign_many({"orders": np.zeros(2)})) == ["rest", "rest"]


def test_rfm_scores_follow_the_edges():
    edges = RfmEdges.fit(np.arange(100.0), np.arange(100.0), np.arange(100.0), 365)
    r, f, m = edges.scores(np.array([0.0, 99.0]), np.array([0.0, 99.0]), np.array([50.0, 50.0]))
    assert list(r) == [5, 1] and list(f) == [1, 5] and list(m) == [3, 3]
    assert RfmEdges.from_dict(edges.as_dict()) == edges


@pytest.mark.parametrize(("data", "message"), [
    ({"segments": []}, "non-empty list"),
    ({"segments": [{"name": "a", "when": {"recency": {"lt": 3}}}, {"name": "b"}]}, "unknown field `recency`"),
    ({"segments": [{"name": "a", "when": {"orders": {"less": 3}}}, {"name": "b"}]}, "unknown operator"),
    ({"segments": [{"name": "a", "when": {"orders": {"lt": "3"}}}, {"name": "b"}]}, "must be a number"),
    ({"segments": [{"name": "a", "when": {"orders": 3}}, {"name": "b"}]}, "table of operators"),
    ({"segments": [{"name": "a"}, {"name": "a"}]}, "duplicate"),
    ({"segments": [{"name": "a"}, {"name": "b"}]}, "unreachable"),
    ({"segments": [{"name": "a", "when": {"orders": {"gt": 1}}}]}, "must have no conditions"),
    ({"segments": [{"name": "VIP"}]}, "lower_snake_case"),
    ({"rfm": {"window_days": 0}, "segments": [{"name": "a"}]}, "window_days"),
    ({"segmnets": []}, "unknown key"),
])
def test_invalid_rules_are_refused_with_a_clear_error(data, message):
    with pytest.raises(RuleError, match=message):
        parse_rules(data)


def test_rules_files_toml_and_json_roundtrip(tmp_path):
    toml = tmp_path / "rules.toml"
    toml.write_text('[rfm]\nwindow_days = 90\n\n[[segments]]\nname = "big"\nlabel = "Big spenders"\n'
                    'when = { spend_90d = { "$gt" = 1000 } }\n\n[[segments]]\nname = "rest"\n')
    rules = load_rules(toml)
    assert rules.windows == (90,) and rules.find("big spenders").name == "big"
    as_json = tmp_path / "rules.json"
    as_json.write_text(json.dumps(rules.as_dict()))
    assert load_rules(as_json) == rules
    assert parse_rules(DEFAULT_RULES.as_dict()) == DEFAULT_RULES
    band = parse_rules({"segments": [{"name": "mid", "when": {"recency_days": {"gte": 45, "lt": 120}}},
                                     {"name": "rest"}]})
    assert parse_rules(band.as_dict()) == band
    assert [band.assign({"recency_days": d}) for d in (10, 60, 130)] == ["rest", "mid", "rest"]
    bad = tmp_path / "rules.toml"
    bad.write_text("[[segments]\n")
    with pytest.raises(RuleError, match="rules.toml"):
        load_rules(bad)
