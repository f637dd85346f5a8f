"""Definitions: a good document parses; a bad one is refused with every problem, by field."""

import json

import pytest

from server.experiments.definitions import DefinitionError, parse_definitions


def _doc(**experiment):
    exp = {
        "key": "hero-test",
        "slots": ["home_hero"],
        "status": "running",
        "variants": [
            {"key": "control", "weight": 0.5, "content": {"image": "a.jpg"}},
            {"key": "sale", "weight": 0.5, "content": {"image": "b.jpg"}},
        ],
        "goal": {"event_type": "purchase", "revenue": True},
        "namespace": ["home", 0, 0.5],
        "condition": {"channel": "web", "top_category": {"$in": ["running", "hiking"]}},
    }
    exp.update(experiment)
    return {
        "slots": [{"key": "home_hero", "default": {"image": "default.jpg"}}],
        "experiments": [exp],
        "rules": [
            {
                "key": "running-banner",
                "slot": "home_hero",
                "condition": {"top_category": "running"},
                "content": {"image": "run.jpg"},
            }
        ],
    }


def _errors(doc, **kwargs):
    with pytest.raises(DefinitionError) as info:
        parse_definitions(json.dumps(doc).encode(), **kwargs)
    return info.value.errors


def test_a_full_document_parses():
    defs = parse_definitions(json.dumps(_doc()).encode())
    exp = defs.experiments[0]
    assert exp.seed == "hero-test" and exp.hash_version == 2 and exp.weights == [0.5, 0.5]
    assert exp.namespace == ("home", 0, 0.5)
    assert exp.attribution_window_ms == 72 * 3_600_000


def test_the_documented_example_file_parses():
    from pathlib import Path

    example = Path(__file__).parents[3] / "docs" / "experiments.example.json"
    defs = parse_definitions(example.read_bytes())
    assert defs.experiments and defs.rules


def test_weights_not_summing_to_one_are_refused():
    doc = _doc(variants=[{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.4}])
    assert _errors(doc) == [
        {"field": "experiments[0].variants", "error": "weights sum to 0.9, not 1 (tolerance 0.001)"}
    ]


def test_all_problems_are_reported_at_once_each_naming_its_field():
    doc = _doc(
        slots=["home_hero", "footer"],
        coverage=1.5,
        namespace=["home", 0.6, 0.2],
        condition={"top_category": {"$inn": ["x"]}},
        forced={"qa-user": "nope"},
    )
    fields = {e["field"] for e in _errors(doc)}
    assert fields == {
        "experiments[0].slots[1]",
        "experiments[0].coverage",
        "experiments[0].namespace",
        "experiments[0].condition.top_category.$inn",
        "experiments[0].forced.qa-user",
    }


def test_slots_known_to_the_server_are_accepted():
    doc = _doc(slots=["home_hero", "cart_promo"])
    for v in doc["experiments"][0]["variants"]:
        v["content"] = {"home_hero": v["content"], "cart_promo": None}
    parse_definitions(json.dumps(doc), known_slots=["cart_promo"])
    assert _errors(doc)[0]["field"] == "experiments[0].slots[1]"


def test_unknown_placement_is_refused_when_placements_are_known():
    doc = _doc(slots=[], placement="pdp_similar")
    errors = _errors(doc, known_placements=["home", "cart"])
    assert errors == [{"field": "experiments[0].placement", "error": "unknown placement 'pdp_similar'"}]


def test_type_errors_name_their_path():
    doc = _doc(coverage="most")
    assert _errors(doc) == [{"field": "$.experiments[0].coverage", "error": "Expected `float`, got `str`"}]


def test_unknown_fields_are_refused_rather_than_ignored():
    doc = _doc(weight_typo=1)
    assert _errors(doc)[0]["field"] == "$.experiments[0]"


def test_duplicate_keys_and_rule_slots():
    doc = _doc()
    doc["experiments"].append(doc["experiments"][0])
    doc["rules"].append({"key": "r2", "slot": "nowhere", "condition": {"a": {"$regex": "("}}})
    fields = [e["field"] for e in _errors(doc)]
    assert fields == ["experiments[1].key", "rules[1].slot", "rules[1].condition.a.$regex"]


def test_multi_slot_experiment_content_is_keyed_by_slot():
    doc = _doc(slots=["home_hero", "promo"])
    doc["slots"].append({"key": "promo"})
    parse_definitions(json.dumps(doc))  # each variant's content is an object: valid
    doc["experiments"][0]["variants"][0]["content"] = "not-an-object"
    assert _errors(doc) == [
        {
            "field": "experiments[0].variants[0].content",
            "error": "must be an object keyed by slot (several slots)",
        }
    ]
