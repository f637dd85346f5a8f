"""Thompson-sampling bandit: weights follow the evidence, keep the floor, best arm wins."""

import pytest

from benchmarks.experiments_sim import bandit_run
from server.experiments.bandit import probability_best, thompson_weights, updated_experiment
from server.experiments.definitions import Bandit, Experiment, Variant
from server.experiments.records import VariantCounters as V


def test_no_data_means_equal_weights():
    weights = thompson_weights([V(), V(), V()], floor=0.05, seed=1)
    assert weights == pytest.approx([1 / 3] * 3, abs=0.02)


def test_clear_winner_gets_the_rest_but_others_keep_the_floor():
    counters = [
        V(units=5000, conversions=200),
        V(units=5000, conversions=250),
        V(units=5000, conversions=400),
    ]
    weights = thompson_weights(counters, floor=0.05, seed=1)
    assert weights[2] == pytest.approx(0.9, abs=1e-3)
    assert weights[0] == pytest.approx(0.05, abs=1e-3) and sum(weights) == pytest.approx(1)


def test_probability_best_reflects_uncertainty():
    close = probability_best([V(units=100, conversions=5), V(units=100, conversions=6)], seed=2)
    assert 0.3 < close[0] < 0.5


def test_updated_experiment_changes_only_weights_of_bandits():
    exp = Experiment(
        key="b",
        slots=["s"],
        variants=[Variant("a", 0.5, "A"), Variant("b", 0.5, "B")],
        bandit=Bandit(floor=0.1),
    )
    new = updated_experiment(exp, [V(units=4000, conversions=100), V(units=4000, conversions=300)], seed=3)
    assert [v.weight for v in new.variants] == pytest.approx([0.1, 0.9], abs=1e-3)
    assert [v.content for v in new.variants] == ["A", "B"]
    plain = Experiment(key="p", slots=["s"], variants=exp.variants)
    assert updated_experiment(plain, [V(), V()]) is plain


def test_simulated_three_arm_bandit_sends_the_best_arm_most_traffic():
    result = bandit_run(periods=25, units_per_period=3000, seed=7)
    assert result["final_best_share"] >= 0.8
    assert result["regret"] < 0.5 * result["fixed_split_regret"]
