"""GET /v1/recommendations, /v1/items/{id}/similar, /v1/items/similar, /v1/trending.

Each handler parses (the declarations below), does at most one Redis read (the shopper's live
state, within the request's deadline), calls the domain function once and serialises."""

from __future__ import annotations

import time

from aiohttp import web

from server.appkeys import METRICS, MODELS, REQUEST_ID, RUNG, SESSIONS, SETTINGS, STARTED, TRENDING
from server.ops.models import Served
from server.recommend.finish import Ranked
from server.recommend.ladder import recommend, similar
from server.recommend.retrieval import Query
from server.schemas import Recommendations, RecommendedItem
from server.store.records import LiveSession, StoreUnavailable
from server.web.api import Api, Param, json_response
from server.web.errors import BadRequest, NotFound, Unavailable

api = Api("recommendations")
PLACEMENTS = ("home", "product", "cart", "category", "search", "checkout", "account", "email")
NEEDS_ITEMS = ("product", "cart")

PLACEMENT = Param("placement", "Where the list is shown; `product` and `cart` need `item_id`, "
                  "`category` needs `category`.", kind="enum", choices=PLACEMENTS, default="home")
USER_ID = Param("user_id", "The signed-in shopper.")
SESSION_ID = Param("session_id", "The live session (anonymous shoppers too).")
ITEM_IDS = Param("item_id", "The page's item(s): the product shown, the cart's items.", kind="ids")
CATEGORY = Param("category", "Category context; results stay in it.")
K = Param("k", "How many items.", kind="int", minimum=1, maximum=lambda s: s.recommend.max_k,
          default=lambda s: s.recommend.default_k)
EXCLUDE = Param("exclude", "Item ids never to return.", kind="ids", max_items=500)


def current(request: web.Request) -> Served:
    served = request.app[MODELS].current
    if served is None:
        raise Unavailable("no model loaded yet (publish one with `vitrine train`)",
                          headers={"Retry-After": "5"})
    return served


def _check_category(served: Served, category: str | None) -> None:
    if category is not None and category not in served.model.category_code:
        raise NotFound(f"unknown category {category[:128]!r}", extra={"parameter": "category"})


def _respond(request: web.Request, served: Served, ranked: Ranked, placement: str | None,
             live_signals: bool) -> web.Response:
    ids, names = served.model.art.items.ids, served.model.art.items.category
    items = [RecommendedItem(ids[i], round(s, 6), r, names[i])
             for i, s, r in zip(ranked.items, ranked.scores, ranked.reasons, strict=True)]
    request.app[METRICS].rung(ranked.rung)
    request[RUNG] = ranked.rung
    return json_response(Recommendations(items=items, rung=ranked.rung, model_version=served.model.version,
                                         request_id=request[REQUEST_ID],
                                         placement=placement, live_signals=live_signals))


async def _live(request: web.Request, q: Query) -> tuple[LiveSession | None, str | None]:
    """The shopper's live state within 70% of what is left of the deadline, or (None, reason)
    when Redis can't say in time."""
    if not (q.user_id or q.session_id):
        return None, None
    settings = request.app[SETTINGS]
    left = request[STARTED] + settings.recommend.deadline_ms / 1000 - time.perf_counter()
    try:
        return await request.app[SESSIONS].read(user_id=q.user_id, session_id=q.session_id, now_ms=q.now_ms,
                                                timeout_s=max(left, 0.001) * 0.7), None
    except StoreUnavailable as exc:
        timeout = isinstance(exc.__cause__, TimeoutError)
        reason = "redis_timeout" if timeout else "redis_unavailable"
        request.app[METRICS].degraded.labels(reason).inc()
        request.app[METRICS].redis_error("read", timeout)
        return None, reason


@api.get("/v1/recommendations", summary="Recommendations for a placement, a shopper and the page",
         description="Ranked items with the rung that answered (`personalized`, `session`, `context`, "
                     "`trending`, `popular`) and why each item is there. Never an error for lack of "
                     "signals: a cold or degraded request gets a non-personalized list, marked as such.",
         params=(PLACEMENT, USER_ID, SESSION_ID, ITEM_IDS, CATEGORY, K, EXCLUDE), response=Recommendations,
         errors=(400, 404, 503))
async def get_recommendations(request: web.Request, p: dict) -> web.Response:
    served = current(request)  # one model for the whole request, even if a swap happens
    q = Query(placement=p["placement"], user_id=p["user_id"], session_id=p["session_id"], k=p["k"],
              now_ms=int(time.time() * 1000), context_items=p["item_id"], category=p["category"],
              exclude=frozenset(p["exclude"]))
    if q.placement in NEEDS_ITEMS and not q.context_items:
        raise BadRequest(f"the {q.placement} placement needs `item_id` (the page's item(s))",
                         extra={"parameter": "item_id"})
    if q.placement == "category" and not q.category:
        raise BadRequest("the category placement needs `category`", extra={"parameter": "category"})
    _check_category(served, q.category)
    live, degraded = await _live(request, q)
    trending = request.app[TRENDING]
    ranked = recommend(served.model, served.caches, q, live, trending, request.app[SETTINGS].recommend)
    live_signals = degraded is None and (ranked.rung not in ("trending", "popular") or trending.healthy)
    return _respond(request, served, ranked, q.placement, live_signals)


async def _similar(request: web.Request, item_ids: list[str], k: int) -> web.Response:
    served = current(request)
    index = served.model.art.item_index
    known = [index[i] for i in item_ids if i in index]
    if not known:
        raise NotFound(f"unknown item(s): {', '.join(x[:128] for x in item_ids[:5])}",
                       extra={"parameter": "item_id"})
    label = served.model.art.items.ids[known[0]] if len(known) == 1 else "your cart"
    ranked = similar(served.model, served.caches, known, label, k, [], request.app[SETTINGS].recommend)
    return _respond(request, served, ranked, None, live_signals=True)


@api.get("/v1/items/{item_id}/similar", summary="Items similar to one item",
         params=(Param("item_id", "The item.", where="path"), K), response=Recommendations,
         errors=(400, 404, 503))
async def get_similar_item(request: web.Request, p: dict) -> web.Response:
    return await _similar(request, [p["item_id"]], p["k"])


@api.get("/v1/items/similar", summary="Items similar to several items (a whole cart)",
         params=(Param("item_id", "The items.", kind="ids", required=True), K), response=Recommendations,
         errors=(400, 404, 503))
async def get_similar_items(request: web.Request, p: dict) -> web.Response:
    return await _similar(request, p["item_id"], p["k"])


@api.get("/v1/trending", summary="Trending items from live, decayed counters, topped up with popular "
                                 "items to k (all popular when live counters are unavailable)",
         params=(CATEGORY, K), response=Recommendations, errors=(400, 404, 503))
async def get_trending(request: web.Request, p: dict) -> web.Response:
    served = current(request)
    _check_category(served, p["category"])
    q = Query(placement="trending", user_id=None, session_id=None, k=p["k"], now_ms=int(time.time() * 1000),
              category=p["category"])
    trending = request.app[TRENDING]
    ranked = recommend(served.model, served.caches, q, None, trending, request.app[SETTINGS].recommend)
    return _respond(request, served, ranked, None, live_signals=trending.healthy)
