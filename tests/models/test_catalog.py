"""The live catalog contract: what an update may say, how it merges, the exported file."""

import msgspec
import pytest

from models.catalog import ItemRecord, ItemUpdate, merge, read_lines, write_lines


def _update(**fields) -> ItemUpdate:
    return msgspec.convert({"item_id": "i1", **fields}, ItemUpdate)


def test_absent_fields_are_kept_and_null_clears():
    sets, clears = _update(price=12.5, brand=None).changes()
    assert sets == {"price": 12.5} and "brand" in clears and "category" not in clears
    record = merge(ItemRecord(brand="acme", category="shoes"), sets, clears)
    assert record == ItemRecord(brand=None, category="shoes", price=12.5)


def test_stock_sets_availability_and_in_stock_alone_forgets_the_count():
    sets, clears = _update(stock=0).changes()
    assert sets == {"stock": 0, "in_stock": False}
    sets, clears = _update(in_stock=True).changes()
    assert sets == {"in_stock": True} and "stock" in clears
    merged = merge(merge(None, {"stock": 3, "in_stock": True}, []), sets, clears)
    assert merged.stock is None and merged.in_stock is True


def test_a_put_shows_a_hidden_item_again_and_tags_are_deduplicated():
    sets, clears = _update(tags=["summer", "sale", "summer"]).changes()
    assert sets["tags"] == ["summer", "sale"] and "hidden" in clears
    assert merge(ItemRecord(hidden=True, title="x"), sets, clears).hidden is False
    assert merge(ItemRecord(title="x"), {}, ["title"]) is None  # nothing left


@pytest.mark.parametrize("fields, where", [
    ({"price": -1}, "price"), ({"prise": 3}, "prise"), ({"stock": 2, "in_stock": False}, "disagree"),
    ({"image_url": "javascript:alert(1)"}, "image_url"), ({"category": "a//b"}, "category"),
    ({"tags": ["x" * 65]}, "tags"), ({"attributes": {"k": [1, 2]}}, "attributes"),
])
def test_bad_fields_are_named(fields, where):
    with pytest.raises(msgspec.ValidationError, match=where):
        _update(**fields)
    with pytest.raises(msgspec.ValidationError, match="item_id"):
        msgspec.convert({"item_id": "x" * 129}, ItemUpdate)


def test_exported_lines_round_trip_and_a_bad_line_is_named(tmp_path):
    path = tmp_path / "catalog.jsonl"
    rows = [("a", ItemRecord(category="shoes", price=3.0, in_stock=False, tags=["t"])),
            ("b", ItemRecord(hidden=True))]
    assert write_lines(path, rows) == 2
    back = list(read_lines(path))
    assert [(x.item_id, x.category, x.price, x.in_stock, x.tags, x.hidden) for x in back] == [
        ("a", "shoes", 3.0, False, ["t"], False), ("b", None, None, None, None, True)]
    path.write_text(path.read_text() + '{"item_id": 3}\n')
    with pytest.raises(ValueError, match=":3:"):
        list(read_lines(path))
