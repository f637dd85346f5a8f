"""The event schema's bounds: what the store can't hold is refused per event, with a reason that
says what to send instead."""

import msgspec
import pytest

from models.events import MAX_AHEAD_MS, Event, ts_problem

T0 = 1_800_000_000_000


def convert(**fields) -> Event:
    return msgspec.convert({"event_id": "e1", "session_id": "s1", "type": "view", "item_id": "i1",
                            "ts": T0, **fields}, Event)


@pytest.mark.parametrize(("fields", "message"), [
    ({"quantity": 10**17}, r"Expected `int` <= 1000000 - at `\$.quantity`"),
    ({"quantity": 1e17}, r"Expected `int`, got `float` - at `\$.quantity`"),
    ({"quantity": 0}, r">= 1 - at `\$.quantity`"),
    ({"price": -1.0}, r">= 0.0 - at `\$.price`"),
    ({"price": 1e13}, r"<= 1000000000000.0 - at `\$.price`"),
    ({"ts": 1_800_000_000}, "looks like Unix seconds: send milliseconds"),
    ({"ts": 1_800_000_000_000_000}, "looks like microseconds"),
    ({"ts": 1_800_000_000_000_000_000}, "looks like nanoseconds"),
    ({"ts": 12}, "before 2000-01-01"),
    ({"query": "q" * 257}, r"length <= 256 - at `\$.query`"),
    ({"category": "c" * 129}, r"length <= 128 - at `\$.category`"),
    ({"event_id": ""}, r"length >= 1 - at `\$.event_id`"),
    ({"item_id": None}, "`item_id` is required for `view` events"),
])
def test_what_the_store_cannot_hold_is_refused_with_a_reason(fields, message):
    with pytest.raises(msgspec.ValidationError, match=message):
        convert(**fields)


def test_the_largest_accepted_values_pass():
    e = convert(quantity=1_000_000, price=1e12, query="q" * 256, category="c" * 128, item_id="i" * 128)
    assert e.quantity == 1_000_000
    assert convert(type="search", item_id=None).item_id is None


def test_a_timestamp_at_most_a_day_ahead_of_the_server_clock():
    assert ts_problem(T0 + MAX_AHEAD_MS, now_ms=T0) is None
    assert "ahead of the server's clock" in ts_problem(T0 + MAX_AHEAD_MS + 1, now_ms=T0)
    assert ts_problem(T0 - 30 * 86_400_000, now_ms=T0) is None  # an offline app's queue: late is fine


def test_the_json_schema_states_the_bounds_and_the_item_rule():
    schema = msgspec.json.schema_components([Event])[1]["Event"]
    props = schema["properties"]
    assert props["quantity"]["maximum"] == 1_000_000 and props["ts"]["minimum"] == 946_684_800_000
    assert props["event_id"]["maxLength"] == 128 and props["query"]["anyOf"][0]["maxLength"] == 256
    rule = Event.__json_schema_extra__
    assert set(rule["if"]["properties"]["type"]["enum"]) == {"view", "add_to_cart", "remove_from_cart",
                                                             "purchase", "return"}
    assert rule["then"]["required"] == ["item_id"]
