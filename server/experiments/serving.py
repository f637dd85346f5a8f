"""What a request needs from experiments, apart from their routes: forced variants for QA, the
shopper's targeting attributes, recording a decision."""

from __future__ import annotations

from aiohttp import web

from server.appkeys import EXPERIMENTS, METRICS, SETTINGS
from server.experiments.decide import Decisions
from server.experiments.targeting import Shopper, targeting_attributes
from server.shopper import ShopperState
from server.store.records import StoreUnavailable
from server.web.api import Param, check_admin
from server.web.errors import BadRequest

SLOTS = Param("slot", "The page's slots to decide (home_hero, promo…).", kind="ids", required=True,
              max_items=20)
CHANNEL = Param("channel", "Where the shopper is (web, app, email…), a targeting attribute.")
PAGE = Param("page", "The page type (home, category, product, cart…), a targeting attribute.")
ATTRIBUTES = Param("attributes", "The storefront's own targeting attributes, a JSON object (country, "
                   "device…); Vitrine's (segment, live affinities, consent) override same-named ones.",
                   kind="json")
FORCE = Param("force", "QA: `experiment:variant` pairs to show, never recorded (needs the admin token).",
              kind="ids", max_items=20)


def forced_variants(request: web.Request, pairs: list[str]) -> dict[str, str]:
    if not pairs:
        return {}
    token = request.app[SETTINGS].server.admin_token
    if token:
        check_admin(request, token.encode())
    out = {}
    for pair in pairs:
        experiment, sep, variant = pair.partition(":")
        if not sep or not experiment or not variant:
            raise BadRequest(f"`force` takes experiment:variant pairs, got {pair[:60]!r}",
                             extra={"parameter": "force"})
        out[experiment] = variant
    return out


def shopper_targeting(request: web.Request, state: ShopperState, *, user_id: str | None,
                      session_id: str | None, channel: str | None, page: str | None,
                      attributes: dict | None) -> tuple[dict, float]:
    """The targeting attributes of a request and the shopper's pre-exposure covariate."""
    served = request.app[EXPERIMENTS].served_model()
    live = state.live
    affinity = dict(live.category_affinity) if live else {}
    total = sum(v for v in affinity.values() if v > 0)
    shares = {c: v / total for c, v in affinity.items() if v > 0} if total > 0 else {}
    top = max(shares, key=shares.__getitem__) if shares else None
    known_user = bool(user_id and served is not None and user_id in served.model.art.user_index)
    returning = bool(known_user or (live and (live.items or live.purchased)))
    segment = served.caches.segment_of(served.model, user_id) if served is not None and user_id else None
    shopper = Shopper(session_id=session_id or user_id or "", user_id=user_id, channel=channel,
                      returning=returning, top_category=top, affinities=shares, rfm_segment=segment,
                      page=page)
    covariate = float(len(live.purchased)) if live else 0.0
    return targeting_attributes(shopper, attributes), covariate


async def record(request: web.Request, decisions: Decisions) -> None:
    """Store new assignments and count new units. A failure is counted and logged, never the
    shopper's problem: the next request decides again (deterministically) and retries."""
    if not decisions.writes:
        return
    experiments = request.app[EXPERIMENTS]
    try:
        await experiments.write(decisions)
    except StoreUnavailable:
        request.app[METRICS].degraded.labels("exposure_not_recorded").inc()
