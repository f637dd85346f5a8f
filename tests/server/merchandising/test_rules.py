"""Rules: validation with named fields, compilation, scope, bits kept current with the catalog."""

import numpy as np
import pytest

from models.catalog import ItemRecord
from server.catalog.view import ItemsView
from server.merchandising.applied import Applied
from server.merchandising.compiled import RuleIndex, RuleSet, Shopper
from server.merchandising.rules import RuleError, parse_rules, read_rules_file
from tests.server.small_model import small_model

T0 = 1_800_000_000_000


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("model"))


def _rules(*objs, **kw):
    return parse_rules(list(objs), **kw)


def test_every_problem_is_named_with_the_rules_index_id_and_field():
    with pytest.raises(RuleError) as info:
        _rules({"id": "ok", "kind": "exclude", "match": {"brand": ["x"]}},
               {"id": "b", "kind": "boost", "match": {"tag": ["x"]}, "factor": 0.5},
               {"id": "p", "kind": "pin", "item_id": "i1"},
               {"id": "s", "kind": "include", "match": {"category": ["c1"]}, "segments": ["vipp"],
                "condition": {"channel": {"$regex": "("}}, "start": 2, "end": 1},
               {"id": "ok", "kind": "out_of_stock", "placements": ["home", "moon"]},
               segments=["vip", "new"])
    got = {(e["index"], e["field"]) for e in info.value.errors}
    assert got == {(1, "rules[1].factor"), (2, "rules[2]"), (3, "rules[3].segments[0]"),
                   (3, "rules[3].condition.channel.$regex"), (3, "rules[3].end"),
                   (4, "rules[4].placements[1]"), (4, "rules[4].id")}
    assert all(e["id"] for e in info.value.errors)


def test_scope_by_placement_schedule_segment_and_condition():
    rs = RuleSet(_rules(
        {"id": "all", "kind": "exclude", "match": {"tag": ["x"]}},
        {"id": "home", "kind": "exclude", "match": {"tag": ["y"]}, "placements": ["home"]},
        {"id": "later", "kind": "exclude", "match": {"tag": ["z"]}, "start": T0 + 1000, "end": T0 + 2000},
        {"id": "vip", "kind": "pin", "item_id": "i1", "position": 1, "segments": ["vip"], "priority": 5},
        {"id": "app", "kind": "pin", "item_id": "i2", "position": 1, "condition": {"channel": "app"}},
        {"id": "off", "kind": "pin", "item_id": "i3", "position": 1, "enabled": False}))
    ids = lambda placement, now, shopper=None: [rs.rules[j].id for j in rs.in_scope(placement, now, shopper)]  # noqa: E731
    assert ids("product", T0) == ["all"] and ids("home", T0) == ["all", "home"]
    assert ids("product", T0 + 1500) == ["all", "later"] and ids("product", T0 + 2000) == ["all"]
    vip_on_app = Shopper("vip", lambda: {"channel": "app"})
    assert ids("cart", T0, vip_on_app) == ["vip", "all", "app"]  # priority first
    assert ids("cart", T0, Shopper("new", lambda: {"channel": "web"})) == ["all"]
    assert rs.disabled == ["off"] and rs.targeted["home"] and rs.words == 1


def test_bits_follow_the_catalog_and_effects_combine(model):
    view = ItemsView(model, {"i10": ItemRecord(brand="acme", tags=["summer"]),
                             "i11": ItemRecord(brand="acme", price=500.0)})
    rs = RuleSet(_rules({"id": "no-acme", "kind": "exclude", "match": {"brand": ["acme"]}},
                        {"id": "cheap", "kind": "price_bounds", "max": 50},
                        {"id": "summer", "kind": "boost", "match": {"tag": ["summer"]}, "factor": 2},
                        {"id": "c1", "kind": "bury", "match": {"category": ["c1"]}, "factor": 0.5},
                        {"id": "show", "kind": "out_of_stock", "hide": False}))
    index = RuleIndex(rs, view)
    applied = Applied(index, index.effect(tuple(range(len(rs.rules)))))
    items = np.array([9, 10, 11, 12, 60], np.int64)  # i9: c1, price 9; i60: price 60
    assert applied.passes(items).tolist() == [True, False, False, True, False]
    assert applied.changed_rules() == ["cheap", "no-acme"]  # the rule set's order
    assert np.allclose(applied.factors(items), [0.5, 2.0, 1.0, 1.0, 1.0])
    assert applied.show_out_of_stock
    view.apply({"i12": ItemRecord(brand="acme"), "i10": None}, seq=1)  # the catalog moves on
    index.sync()
    assert applied.passes(items).tolist() == [True, True, False, False, False]
    assert np.allclose(applied.factors(items), [0.5, 1.0, 1.0, 1.0, 1.0])


def test_a_rule_that_fails_to_compile_leaves_the_others_running():
    good, bad = _rules({"id": "good", "kind": "exclude", "match": {"tag": ["x"]}},
                       {"id": "bad", "kind": "exclude", "match": {"tag": ["y"]}})
    bad.condition = {"a": {"$nope": 1}}  # as if stored by a broken writer
    rs = RuleSet([good, bad])
    assert [c.id for c in rs.rules] == ["good"] and "bad" in rs.errors


def test_a_rules_file_in_toml(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('[[rules]]\nid = "p"\nkind = "pin"\nitem_id = "i1"\nposition = 2\n'
                    'placements = ["home"]\nstart = 2026-06-01T00:00:00Z\n')
    (rule,) = parse_rules(read_rules_file(path))
    assert rule.kind == "pin" and rule.start_ms == 1_780_272_000_000
    path.write_text("[[rules]\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        read_rules_file(path)


def test_the_documented_example_file_is_valid():
    from pathlib import Path

    path = Path(__file__).parents[3] / "docs" / "rules.example.json"
    rules = parse_rules(read_rules_file(path), segments=["vip", "loyal", "new"])
    assert sorted({r.kind for r in rules}) == ["boost", "bury", "exclude", "include", "out_of_stock", "pin",
                                               "price_bounds"]
    assert RuleSet(rules).errors == {}
