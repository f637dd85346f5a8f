"""GET /v1/recommendations, /v1/items/{id}/similar, /v1/items/similar, /v1/trending."""

from __future__ import annotations

import time

import numpy as np
from aiohttp import web

from server import blend
from server.appkeys import BLEND, METRICS, SETTINGS, STARTED, STORE, TRENDING_CACHE
from server.errors import BadRequest, NotFound
from server.http import current_model, id_list, id_param, int_param, json_response, request_id
from server.model_holder import ServingModel
from server.schemas import Recommendations, RecommendedItem
from server.session_store import LiveSession, StoreUnavailable

routes = web.RouteTableDef()
PLACEMENTS = ("home", "product", "cart", "category", "search", "checkout", "account", "email")


def _query(request: web.Request, model: ServingModel) -> blend.Query:
    settings = request.app[SETTINGS]
    placement = request.query.get("placement", "home")
    if placement not in PLACEMENTS:
        raise BadRequest(f"unknown placement {placement!r} (one of: {', '.join(PLACEMENTS)})")
    q = blend.Query(
        placement=placement,
        user_id=id_param(request, "user_id"),
        session_id=id_param(request, "session_id"),
        k=int_param(request, "k", settings.default_k, 1, settings.max_k),
        now_ms=int(time.time() * 1000),
        context_items=id_list(request, "item_id"),
        category=id_param(request, "category"),
        exclude=frozenset(id_list(request, "exclude", limit=500)),
    )
    if placement in ("product", "cart") and not q.context_items:
        raise BadRequest(f"the {placement} placement needs `item_id` (the page's item(s))")
    if placement == "category" and not q.category:
        raise BadRequest("the category placement needs `category`")
    if q.category is not None and q.category not in model.category_code:
        raise NotFound(f"unknown category {q.category!r}")
    return q


async def _live(
    request: web.Request, q: blend.Query, budget_s: float
) -> tuple[LiveSession | None, str | None]:
    """The shopper's live state within the budget, or (None, reason) when Redis can't say."""
    if not (q.user_id or q.session_id):
        return None, None
    try:
        return await request.app[STORE].read(user_id=q.user_id, session_id=q.session_id,
                                             now_ms=q.now_ms, timeout_s=budget_s), None
    except StoreUnavailable as exc:
        return None, "redis_timeout" if isinstance(exc.__cause__, TimeoutError) else "redis_unavailable"


async def _trending(request: web.Request, model: ServingModel, category: str | None, now_ms: int,
                    budget_s: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Live trending as (item indices, scores), cached in-process for `trending_cache_s` (a
    storefront's cold visitors all ask for the same list); None when Redis can't answer."""
    settings, cache = request.app[SETTINGS], request.app[TRENDING_CACHE]
    key = (model.version, category)
    hit = cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    try:
        rows = await request.app[STORE].trending(category=category, n=500, now_ms=now_ms, timeout_s=budget_s)
    except StoreUnavailable:
        return None
    mapped = blend.map_trending(model, rows)
    if len(cache) > 10_000:  # categories × model versions; never grows without bound
        cache.clear()
    cache[key] = (time.monotonic() + settings.trending_cache_s, mapped)
    return mapped


def _response(model: ServingModel, ranked: blend.Ranked, request: web.Request, placement: str | None,
              live_signals: bool) -> web.Response:
    ids, names = model.art.items.ids, model.art.items.category
    items = [RecommendedItem(ids[i], round(s, 6), r, names[i])
             for i, s, r in zip(ranked.items, ranked.scores, ranked.reasons, strict=True)]
    request.app[METRICS].rung(ranked.rung)
    return json_response(Recommendations(items=items, rung=ranked.rung, model_version=model.version,
                                         request_id=request_id(request), placement=placement,
                                         live_signals=live_signals))


@routes.get("/v1/recommendations")
async def get_recommendations(request: web.Request) -> web.Response:
    model = current_model(request)  # one model for the whole request, even if a swap happens
    settings = request.app[SETTINGS]
    deadline = request[STARTED] + settings.deadline_ms / 1000
    q = _query(request, model)
    remaining = lambda: max(deadline - time.perf_counter(), 0.001)  # noqa: E731
    live, degraded = await _live(request, q, remaining() * 0.7)
    if degraded:
        request.app[METRICS].degraded.labels(degraded).inc()
    ranked = blend.rank(model, q, live, request.app[BLEND])
    if ranked is None and not degraded:
        live_trending = await _trending(request, model, q.category, q.now_ms, remaining() * 0.7)
        ranked = blend.trending(model, *live_trending, q, live) if live_trending else None
    if ranked is None:
        ranked = blend.popular(model, q, live)
    ranked = blend.top_up(model, ranked, q, live)
    return _response(model, ranked, request, q.placement, live_signals=degraded is None)


def _similar(request: web.Request, model: ServingModel, item_ids: list[str]) -> web.Response:
    settings = request.app[SETTINGS]
    k = int_param(request, "k", settings.default_k, 1, settings.max_k)
    known = [model.art.item_index[i] for i in item_ids if i in model.art.item_index]
    if not known:
        raise NotFound(f"unknown item(s): {', '.join(item_ids[:5])}")
    items, scores = blend.similar(model, known, k)
    label = item_ids[0] if len(item_ids) == 1 else "your cart"
    ranked = blend.Ranked(items, scores, [f"similar to {label}"] * len(items), "context")
    return _response(model, ranked, request, None, live_signals=True)


@routes.get("/v1/items/{item_id}/similar")
async def get_similar_item(request: web.Request) -> web.Response:
    return _similar(request, current_model(request), [request.match_info["item_id"]])


@routes.get("/v1/items/similar")
async def get_similar_items(request: web.Request) -> web.Response:
    item_ids = id_list(request, "item_id")
    if not item_ids:
        raise BadRequest("give one or more `item_id`")
    return _similar(request, current_model(request), item_ids)


@routes.get("/v1/trending")
async def get_trending(request: web.Request) -> web.Response:
    model = current_model(request)
    settings = request.app[SETTINGS]
    q = blend.Query(placement="trending", user_id=None, session_id=None,
                    k=int_param(request, "k", settings.default_k, 1, settings.max_k),
                    now_ms=int(time.time() * 1000), category=id_param(request, "category"))
    if q.category is not None and q.category not in model.category_code:
        raise NotFound(f"unknown category {q.category!r}")
    live_trending = await _trending(request, model, q.category, q.now_ms, settings.deadline_ms / 1000)
    ranked = blend.trending(model, *live_trending, q, None) if live_trending else None
    if ranked is None:
        ranked = blend.popular(model, q, None)
    # A carousel asks for k: a short live list (a quiet hour, a small category) is filled
    # with popular items, each saying so.
    ranked = blend.top_up(model, ranked, q, None)
    return _response(model, ranked, request, None, live_signals=live_trending is not None)
