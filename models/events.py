"""The event contract: one schema, validated at the server's door and read by the trainer.

An event is what a storefront reports: a shopper viewed, carted, bought or returned an item.
The server exports exactly these records to event logs and the trainer reads them back, so
this module is the single definition of field names, types, allowed values and bounds. The
bounds are msgspec constraints, so the server's OpenAPI document states exactly what it
enforces (`vitrine openapi`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

import msgspec


class EventType(StrEnum):
    VIEW = "view"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"
    RETURN = "return"
    SEARCH = "search"
    CATEGORY_VIEW = "category_view"


class Channel(StrEnum):
    WEB = "web"
    APP = "app"
    STORE = "store"


# Event types that name an item; the others (search, category_view) may omit it.
ITEM_EVENT_TYPES = frozenset(
    {
        EventType.VIEW,
        EventType.ADD_TO_CART,
        EventType.REMOVE_FROM_CART,
        EventType.PURCHASE,
        EventType.RETURN,
    }
)

# Upper bounds that keep one event small (at most ~1 KB in Redis) and every number within what
# the store holds exactly: Lua numbers are doubles, Redis counters int64, the trainer's int32.
MAX_ID_LEN = 128
MAX_QUERY_LEN = 256
MAX_QUANTITY = 1_000_000
MAX_PRICE = 1e12
# `ts` is Unix milliseconds between 2000-01-01 and 2100-01-01: a value below is in seconds, one
# above in microseconds or nanoseconds. At the server's door it may also be at most a day ahead of
# the server's clock (a wrong device clock; further ahead would freeze the shopper's affinities).
MIN_TS_MS = 946_684_800_000
MAX_TS_MS = 4_102_444_800_000
MAX_AHEAD_MS = 86_400_000


def _text(description: str) -> msgspec.Meta:
    return msgspec.Meta(min_length=1, max_length=MAX_ID_LEN, description=description)


class Event(msgspec.Struct, forbid_unknown_fields=False, omit_defaults=True):
    """One storefront interaction.

    `ts` is Unix time in milliseconds. `user_id` is absent for anonymous shoppers; the
    `session_id` ties their events together. `event_id` makes ingestion idempotent (per
    shopper). `item_id` is required for view, add_to_cart, remove_from_cart, purchase and return.
    """

    event_id: Annotated[str, _text("Idempotency key, unique per shopper.")]
    session_id: Annotated[str, _text("The browsing session (anonymous shoppers too).")]
    type: EventType
    ts: Annotated[int, msgspec.Meta(
        description="Unix time in milliseconds (not seconds), at most a day ahead of the server's clock.",
        extra_json_schema={"minimum": MIN_TS_MS, "maximum": MAX_TS_MS, "x-max-ahead-ms": MAX_AHEAD_MS})]
    user_id: Annotated[str, _text("The signed-in shopper; omit for anonymous ones.")] | None = None
    item_id: Annotated[str, _text("The item; required for item event types.")] | None = None
    category: Annotated[str, _text("The item's or the page's category.")] | None = None
    price: Annotated[float, msgspec.Meta(ge=0, le=MAX_PRICE, description="Unit price.")] | None = None
    quantity: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY, description="Units.")] = 1
    channel: Channel = Channel.WEB
    query: Annotated[str, msgspec.Meta(max_length=MAX_QUERY_LEN, description="The search query.")] | None \
        = None

    # What the field types can't say, added to the generated JSON Schema (OpenAPI 3.1 is JSON
    # Schema 2020-12): the item event types need `item_id`.
    __json_schema_extra__: ClassVar[dict] = {
        "if": {"properties": {"type": {"enum": sorted(t.value for t in ITEM_EVENT_TYPES)}},
               "required": ["type"]},
        "then": {"required": ["item_id"], "properties": {"item_id": {"type": "string"}}},
    }

    def __post_init__(self) -> None:
        # Direct construction (the trainer, tests) skips the Meta bounds; these hold everywhere.
        if self.type in ITEM_EVENT_TYPES and self.item_id is None:
            raise ValueError(f"`item_id` is required for `{self.type.value}` events")
        if problem := ts_problem(self.ts):
            raise ValueError(problem)


def ts_problem(ts: int, now_ms: int | None = None) -> str | None:
    """Why `ts` is not a plausible Unix time in milliseconds (a day ahead of `now_ms` at most,
    when given), or None."""
    if ts < MIN_TS_MS:
        if MIN_TS_MS // 1000 <= ts <= MAX_TS_MS // 1000:
            return f"`ts` {ts} looks like Unix seconds: send milliseconds (seconds × 1000)"
        return f"`ts` {ts} is before 2000-01-01: send Unix time in milliseconds"
    if ts > MAX_TS_MS:
        if MIN_TS_MS * 1000 <= ts <= MAX_TS_MS * 1000:
            return f"`ts` {ts} looks like microseconds: send milliseconds (microseconds // 1000)"
        if MIN_TS_MS * 1_000_000 <= ts <= MAX_TS_MS * 1_000_000:
            return f"`ts` {ts} looks like nanoseconds: send milliseconds (nanoseconds // 1000000)"
        return f"`ts` {ts} is after 2100-01-01: send Unix time in milliseconds"
    if now_ms is not None and ts > now_ms + MAX_AHEAD_MS:
        return (f"`ts` {ts} is {(ts - now_ms) / 3_600_000:.1f} h ahead of the server's clock "
                f"({now_ms}): at most {MAX_AHEAD_MS // 3_600_000} h ahead is accepted")
    return None


class EventBatch(msgspec.Struct):
    """The body of `POST /v1/events` when sending several events at once."""

    events: list[Event]


EVENT_FIELDS: tuple[str, ...] = Event.__struct_fields__
EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)

# Default confidence per event type: a view is a weak signal, a purchase a strong one. A
# return is handled apart (it removes the positive), so it carries no weight of its own here.
# These are training parameters: the trainer records the ones it used in the manifest and the
# server folds live events in with those, not with these defaults.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    EventType.VIEW.value: 1.0,
    EventType.ADD_TO_CART.value: 3.0,
    EventType.REMOVE_FROM_CART.value: 0.0,
    EventType.PURCHASE.value: 6.0,
    EventType.RETURN.value: 0.0,
    EventType.SEARCH.value: 0.0,
    EventType.CATEGORY_VIEW.value: 0.0,
}

_decoder = msgspec.json.Decoder(Event)


def decode_event(raw: bytes | str) -> Event:
    """Decode and validate one JSON event; raises msgspec.ValidationError naming the field."""
    return _decoder.decode(raw)


def event_to_builtins(event: Event) -> dict:
    return msgspec.to_builtins(event)
