"""What the stores return, as plain types: the domain code (the ladder, variants) reads these
without importing any Redis client."""

from __future__ import annotations

from dataclasses import dataclass, field


class StoreUnavailable(Exception):
    """Redis is down, slow or refused the command: reads degrade, writes answer 503."""


@dataclass(slots=True)
class LiveSession:
    items: list[tuple[str, str, int]] = field(default_factory=list)  # (item, type, ts), newest first
    purchased: frozenset[str] = frozenset()
    returned: frozenset[str] = frozenset()
    category_affinity: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Signal:
    """A trigger rule an event completed (shopper.lua): `views` (an item viewed enough times, not
    in the cart; episode `item:window start`) or `visit` (a signed-in shopper's new session;
    episode the session id)."""
    event: int  # index into the ingested events
    kind: str
    episode: str
    item: str


@dataclass(slots=True)
class IngestResult:
    accepted: int
    duplicates: list[str]
    # Accepted into the stream but left out of live state (and trending): ids the server doesn't
    # know, and events past the shopper's budget for the dedup period.
    unknown_items: int = 0
    unknown_categories: int = 0
    over_budget: int = 0
    # Events of shoppers who refused personalization: accepted (trending counts them), but no
    # key about the shopper was written (indices into the ingested events).
    not_stored: frozenset[int] = frozenset()
    signals: list[Signal] = field(default_factory=list)
