"""Response bodies, as msgspec types: they serialise the answers and generate the OpenAPI
schemas, so the documentation and the server can't disagree."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# Where a list is shown (`GET /v1/recommendations?placement=`), named once for the parameter and
# for the answer's schema.
PLACEMENTS = ("home", "product", "cart", "category", "search", "checkout", "account", "email", "buy_again")


class ErrorBody(msgspec.Struct):
    error: str
    detail: str
    request_id: str


class Rejected(msgspec.Struct):
    index: int
    error: str
    event_id: str | None = None


class EventsAccepted(msgspec.Struct):
    accepted: int
    duplicates: list[str]
    rejected: list[Rejected]
    request_id: str


class RecommendedItem(msgspec.Struct):
    item_id: str
    score: float
    reason: str
    category: str | None = None


class Recommendations(msgspec.Struct):
    items: list[RecommendedItem]
    rung: str  # personalized | session | context | trending | popular | buy_again
    model_version: str
    request_id: str
    placement: Literal[PLACEMENTS] | None = None  # None: similar items, trending
    live_signals: bool = True  # false when Redis couldn't be read in budget (degraded)
    experiment: str | None = None  # the experiment whose variant chose this placement's strategy
    variant: str | None = None
    # off: the shopper refused personalization (PUT /v1/consent): nothing of theirs shaped the list
    personalization: Literal["on", "off"] = "on"


class CategoryCount(msgspec.Struct):
    category: str
    items: int


class ModelInfo(msgspec.Struct):
    version: str
    created: str
    loaded_at: str  # ISO 8601, as `created`
    counts: dict
    params: dict
    metrics: dict
    index: dict
    reload_error: str | None = None
    age_s: float = 0.0  # since the served version was created (trained)
    # The last `vitrine retrain`'s outcome (models/retrain.py), when one ran on this store.
    retrain: dict | None = None


class Health(msgspec.Struct):
    status: str
    model_version: str | None = None
    redis: bool | None = None
    detail: str | None = None
    # What is open on this server (no API keys, no admin token): readiness says it, loudly.
    warnings: list[str] = []


class SlotAnswer(msgspec.Struct):
    """What a page slot shows and what chose it."""

    source: str  # experiment | forced | rule | default | unknown (an undeclared slot)
    content: Any = None
    experiment: str | None = None
    variant: str | None = None
    rule: str | None = None


def slot_answers(decisions: dict) -> dict[str, SlotAnswer]:
    """The API's view of decide()'s SlotDecisions (every field present, nulls included)."""
    return {slot: SlotAnswer(d.source, d.content, d.experiment, d.variant, d.rule)
            for slot, d in decisions.items()}


class VariantsAnswer(msgspec.Struct):
    slots: dict[str, SlotAnswer]
    version: int  # of the experiments document that decided
    live_signals: bool  # false when the shopper's state couldn't be read: defaults and rules only
    request_id: str
    # off: the shopper refused personalization: variants from anonymous attributes, not recorded
    personalization: Literal["on", "off"] = "on"


class PageAnswer(msgspec.Struct):
    recommendations: dict[str, Recommendations]  # by placement
    slots: dict[str, SlotAnswer]
    version: int  # of the experiments document
    live_signals: bool
    request_id: str
    personalization: Literal["on", "off"] = "on"  # off: the shopper refused (see Recommendations)
