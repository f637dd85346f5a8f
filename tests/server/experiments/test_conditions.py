"""Conditions against GrowthBook's published cases, plus what Vitrine refuses up front."""

import pytest
from gbcases import cases, ids

from server.experiments._js import padded_version
from server.experiments.conditions import compile_condition, condition_errors, eval_condition


@pytest.mark.parametrize("case", cases("evalCondition"), ids=ids("evalCondition"))
def test_condition_matches_published_cases(case):
    _, condition, attributes, expected = case
    assert eval_condition(attributes, condition) is expected


@pytest.mark.parametrize("op", ["lt", "gt", "eq"])
def test_version_comparison_matches_published_cases(op):
    for a, b, expected in cases("versionCompare")[op]:
        pa, pb = padded_version(a), padded_version(b)
        got = {"lt": pa < pb, "gt": pa > pb, "eq": pa == pb}[op]
        assert got is expected, (a, b)


def test_compiled_condition_is_reusable_across_shoppers():
    runner = compile_condition({"top_category": "running", "consent": {"$in": ["personalization"]}})
    assert runner({"top_category": "running", "consent": ["analytics", "personalization"]})
    assert not runner({"top_category": "running", "consent": ["analytics"]})
    assert not runner({"top_category": "hiking", "consent": ["personalization"]})


def test_nested_paths_and_affinity_thresholds():
    runner = compile_condition({"affinities.shoes": {"$gte": 0.5}, "cart.items.length": {"$gt": 0}})
    assert runner({"affinities": {"shoes": 0.7}, "cart": {"items": [1]}})
    assert not runner({"affinities": {"shoes": 0.7}, "cart": {"items": []}})
    assert not runner({"affinities": {}})


def test_case_insensitive_and_negated_regex_operators():
    assert eval_condition({"ua": "Android MOBILE"}, {"ua": {"$regexi": "mobile"}})
    assert eval_condition({"ua": "Desktop"}, {"ua": {"$notRegex": "Mobile"}})
    assert eval_condition({"tags": ["A", "b"]}, {"tags": {"$alli": ["a", "B"]}})
    assert eval_condition({"country": "FR"}, {"country": {"$ini": ["fr", "de"]}})


def test_valid_conditions_have_no_errors():
    for name, condition, _, _ in cases("evalCondition"):
        if "$regx" in str(condition) or "???" in str(condition) or "not array" in name:
            continue  # cases that test how a malformed condition evaluates
        assert condition_errors(condition) == [], condition


@pytest.mark.parametrize(
    "condition,expected",
    [
        ({"a": {"$regx": "x"}}, "condition.a.$regx: unknown operator '$regx'"),
        ({"a": {"$in": "x"}}, "condition.a.$in: needs a list"),
        ({"a": {"$regex": "(["}}, "condition.a.$regex: invalid regular expression '(['"),
        ({"$or": {"a": 1}}, "condition.$or: must be a list of conditions"),
        ({"$and": [{"b": {"$not": {"$gtx": 1}}}]}, "condition.$and[0].b.$not.$gtx: unknown operator '$gtx'"),
        ({"$nro": []}, "condition.$nro: unknown logical operator '$nro'"),
        ({"a": {"$type": "int"}}, "condition.a.$type: unknown type 'int'"),
        ({"h": {"$elemMatch": {"n": {"$foo": 1}}}}, "condition.h.$elemMatch.n.$foo: unknown operator '$foo'"),
    ],
)
def test_malformed_conditions_are_reported_with_their_path(condition, expected):
    assert condition_errors(condition) == [expected]
