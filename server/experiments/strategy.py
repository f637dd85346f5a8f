"""A placement experiment's strategy: what its variants may change in the ladder for their
units (the blend and the candidates), checked when the document is stored and applied per
request. Pure: no aiohttp, no Redis."""

from __future__ import annotations

import msgspec

from server.experiments.decide import SlotDecision
from server.settings import RecommendSettings

STRATEGY_FIELDS = ("user_weight", "session_weight", "context_weight", "affinity_weight",
                   "session_half_life_s", "candidates", "max_category_share", "exact_category_max")


def strategy_errors(content: object) -> list[str]:
    """Why a placement variant's content can't be a strategy (empty when it can)."""
    if content is None:
        return []
    if not isinstance(content, dict):
        return ["must be an object of recommend settings"]
    unknown = sorted(set(content) - set(STRATEGY_FIELDS))
    if unknown:
        return [f"unknown strategy setting(s) {', '.join(unknown)} (allowed: {', '.join(STRATEGY_FIELDS)})"]
    try:
        with_strategy(RecommendSettings(), content)
    except (msgspec.ValidationError, ValueError, TypeError) as exc:
        return [str(exc)]
    return []


def with_strategy(cfg: RecommendSettings, content: dict | None) -> RecommendSettings:
    """The request's recommend settings with a placement variant's strategy applied (validated
    like the settings themselves)."""
    if not content:
        return cfg
    return msgspec.convert({**msgspec.structs.asdict(cfg), **content}, RecommendSettings)


def placement_strategy(decision: SlotDecision, cfg: RecommendSettings) -> RecommendSettings:
    if decision.source in ("experiment", "forced") and isinstance(decision.content, dict):
        return with_strategy(cfg, decision.content)
    return cfg
