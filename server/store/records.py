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
    consent: bool | None = None  # not stored yet (the consent issue); None = unknown


@dataclass(slots=True)
class IngestResult:
    accepted: int
    duplicates: list[str]
    # Accepted into the stream but left out of live state (and trending): ids the server doesn't
    # know, and events past the shopper's budget for the dedup period.
    unknown_items: int = 0
    unknown_categories: int = 0
    over_budget: int = 0
