"""Response bodies, as msgspec types: they serialise the answers and generate the OpenAPI
schemas, so the documentation and the server can't disagree."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from server.recommend.placements import PLACEMENTS  # declared once, there (pure)


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
    # The live catalog's metadata, present only when asked for with `fields=`.
    title: str | None | UnsetType = UNSET
    image_url: str | None | UnsetType = UNSET
    price: float | None | UnsetType = UNSET
    brand: str | None | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    in_stock: bool | UnsetType = UNSET
    attributes: dict[str, Any] | UnsetType = UNSET


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
    rules: list[str] = []  # merchandising rules that changed this answer


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


class RejectedItem(msgspec.Struct):
    index: int
    error: str
    item_id: str | None = None


class ItemsAccepted(msgspec.Struct):
    accepted: int
    rejected: list[RejectedItem]
    request_id: str


class CatalogItem(msgspec.Struct):
    """An item as answers see it now: the model's metadata with the live catalog over it."""

    item_id: str
    in_model: bool  # trained on (False: added by the live catalog since)
    category: str | None
    price: float | None
    in_stock: bool
    hidden: bool
    consumable: bool
    stock: int | None = None
    brand: str | None = None
    tags: list[str] = []
    title: str | None = None
    image_url: str | None = None
    attributes: dict[str, Any] = {}
    live: list[str] = []  # the fields the live catalog sets
    request_id: str = ""


class ItemHidden(msgspec.Struct):
    item_id: str
    hidden: bool
    request_id: str


class RuleState(msgspec.Struct):
    id: str
    kind: str
    applied: bool  # compiled and running on this worker
    live_now: bool  # enabled and within its schedule
    rule: dict[str, Any]
    error: str | None = None


class RulesListing(msgspec.Struct):
    version: int  # of the rules this worker runs
    rules: list[RuleState]
    request_id: str


class RulesSaved(msgspec.Struct):
    version: int
    saved: list[str]
    request_id: str


class ExplainedItem(msgspec.Struct):
    item_id: str
    position: int
    score: float
    reason: str
    parts: dict[str, Any]  # rung, raw and normalised score, affinity, factor, final score, rank
    pinned_by: str | None = None


class Explanation(msgspec.Struct):
    """Why each item of an answer is where it is (admin debug view)."""

    answer: Recommendations
    items: list[ExplainedItem]
    lists: list[dict[str, Any]]  # each list the ladder finished: candidates, what removed how many
    rules_in_scope: list[str]
    target: dict[str, Any] | None = None  # the item asked about with `explain_item`
