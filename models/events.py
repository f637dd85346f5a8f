"""The event contract: one schema, validated at the server's door and read by the trainer.

An event is what a storefront reports: a shopper viewed, carted, bought or returned an item.
The server exports exactly these records to event logs and the trainer reads them back, so
this module is the single definition of field names, types and allowed values.
"""

from __future__ import annotations

from enum import StrEnum

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

# Upper bounds that keep one event small and the keys in Redis bounded.
MAX_ID_LEN = 128

Id = msgspec.Meta(min_length=1, max_length=MAX_ID_LEN)


class Event(msgspec.Struct, forbid_unknown_fields=False, omit_defaults=True):
    """One storefront interaction.

    `ts` is Unix time in milliseconds. `user_id` is absent for anonymous shoppers; the
    `session_id` ties their events together. `event_id` makes ingestion idempotent.
    """

    event_id: str
    session_id: str
    type: EventType
    ts: int
    user_id: str | None = None
    item_id: str | None = None
    category: str | None = None
    price: float | None = None
    quantity: int = 1
    channel: Channel = Channel.WEB
    query: str | None = None

    def __post_init__(self) -> None:
        for name in ("event_id", "session_id", "user_id", "item_id", "category"):
            value = getattr(self, name)
            if value is not None and not (0 < len(value) <= MAX_ID_LEN):
                raise ValueError(f"`{name}` must be 1..{MAX_ID_LEN} characters")
        if self.type in ITEM_EVENT_TYPES and self.item_id is None:
            raise ValueError(f"`item_id` is required for `{self.type.value}` events")
        if self.ts <= 0:
            raise ValueError("`ts` must be a positive Unix time in milliseconds")
        if self.quantity < 1:
            raise ValueError("`quantity` must be >= 1")
        if self.price is not None and self.price < 0:
            raise ValueError("`price` must be >= 0")


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
