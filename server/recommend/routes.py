"""GET /v1/recommendations, /v1/items/{id}/similar, /v1/items/similar, /v1/trending, and the
admin debug view of a recommendation (/v1/admin/explain).

Each handler parses (the declarations below), does at most one Redis read (the shopper's live
state, within the request's deadline), calls the domain function once and serialises. The live
catalog's view and the merchandising rules come from in-process mirrors."""

from __future__ import annotations

import time

from aiohttp import web

from models.events import Channel
from server.appkeys import CATALOG, METRICS, MODELS, REQUEST_ID, RULES, SESSIONS, SETTINGS, STARTED, TRENDING
from server.catalog.view import ItemsView
from server.merchandising.applied import Applied
from server.ops.models import Served
from server.recommend.finish import Ranked, Trace
from server.recommend.ladder import recommend, similar
from server.recommend.placements import PLACEMENTS
from server.recommend.retrieval import Query
from server.schemas import ExplainedItem, Explanation, Recommendations, RecommendedItem
from server.store.records import LiveSession, StoreUnavailable
from server.web.api import Api, Param, json_response
from server.web.errors import BadRequest, NotFound, Unavailable

api = Api("recommendations")
NEEDS_ITEMS = ("product", "cart")
FIELDS = ("title", "image_url", "price", "brand", "tags", "in_stock", "attributes", "category")

PLACEMENT = Param("placement", "Where the list is shown; `product` and `cart` need `item_id`, "
                  "`category` needs `category`.", kind="enum", choices=PLACEMENTS, default="home")
USER_ID = Param("user_id", "The signed-in shopper.")
SESSION_ID = Param("session_id", "The live session (anonymous shoppers too).")
ITEM_IDS = Param("item_id", "The page's item(s): the product shown, the cart's items.", kind="ids")
CATEGORY = Param("category", "Category context; results stay in it.")
K = Param("k", "How many items.", kind="int", minimum=1, maximum=lambda s: s.recommend.max_k,
          default=lambda s: s.recommend.default_k)
EXCLUDE = Param("exclude", "Item ids never to return.", kind="ids", max_items=500)
CHANNEL = Param("channel", "Where the shopper is (targeting conditions of merchandising rules can test it).",
                kind="enum", choices=tuple(c.value for c in Channel))
ITEM_FIELDS = Param("fields", "Item metadata to add to each item, from the live catalog (what a widget "
                    "shows, so it needs no second call).", kind="ids", choices=FIELDS)
RECOMMENDATION_PARAMS = (PLACEMENT, USER_ID, SESSION_ID, ITEM_IDS, CATEGORY, K, EXCLUDE, CHANNEL, ITEM_FIELDS)


def current(request: web.Request) -> Served:
    served = request.app[MODELS].current
    if served is None:
        raise Unavailable("no model loaded yet (publish one with `vitrine train`)",
                          headers={"Retry-After": "5"})
    return served


def _check_category(view: ItemsView, category: str | None) -> None:
    if category is not None and category not in view.category_code:
        raise NotFound(f"unknown category {category[:128]!r}", extra={"parameter": "category"})


def _answer(request: web.Request, served: Served, view: ItemsView, ranked: Ranked, placement: str | None,
            live_signals: bool, fields: list[str] = (), rules: Applied | None = None) -> Recommendations:
    items = [RecommendedItem(view.id_of(i), round(s, 6), r, view.category_of(i))
             for i, s, r in zip(ranked.items, ranked.scores, ranked.reasons, strict=True)]
    if fields:
        _add_fields(view, ranked.items, items, fields)
    request.app[METRICS].rung(ranked.rung)
    return Recommendations(items=items, rung=ranked.rung, model_version=served.model.version,
                           request_id=request[REQUEST_ID], placement=placement, live_signals=live_signals,
                           rules=rules.changed_rules() if rules is not None else [])


def _add_fields(view: ItemsView, rows: list[int], items: list[RecommendedItem], fields: list[str]) -> None:
    for i, item in zip(rows, items, strict=True):
        record = view.record(i)
        for name in fields:
            if name == "price":
                item.price = view.price_of(i)
            elif name == "in_stock":
                item.in_stock = bool(view.in_stock[i])
            elif name == "tags":
                item.tags = list(view.tags_of(i))
            elif name == "attributes":
                item.attributes = dict(record.attributes or {}) if record is not None else {}
            elif name != "category":
                setattr(item, name, getattr(record, name) if record is not None else None)


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
        reason = "redis_timeout" if isinstance(exc.__cause__, TimeoutError) else "redis_unavailable"
        request.app[METRICS].degraded.labels(reason).inc()
        return None, reason


async def _recommendations(request: web.Request, p: dict, trace: Trace | None = None):
    served = current(request)  # one model for the whole request, even if a swap happens
    view = request.app[CATALOG].view(served.model)
    q = Query(placement=p["placement"], user_id=p["user_id"], session_id=p["session_id"], k=p["k"],
              now_ms=int(time.time() * 1000), context_items=p["item_id"], category=p["category"],
              exclude=frozenset(p["exclude"]))
    if q.placement in NEEDS_ITEMS and not q.context_items:
        raise BadRequest(f"the {q.placement} placement needs `item_id` (the page's item(s))",
                         extra={"parameter": "item_id"})
    if q.placement == "category" and not q.category:
        raise BadRequest("the category placement needs `category`", extra={"parameter": "category"})
    _check_category(view, q.category)
    live, degraded = await _live(request, q)
    trending, rules = request.app[TRENDING], request.app[RULES]
    applied = rules.applied(view, q.placement, q.now_ms, rules.shopper(served.model, q, live, p["channel"]))
    if trace is not None and trace.target is None and p.get("explain_item"):
        trace.target = view.index_of(p["explain_item"])
    ranked = recommend(served.model, served.caches, q, live, trending, request.app[SETTINGS].recommend,
                       view=view, rules=applied, trace=trace)
    live_signals = degraded is None and (ranked.rung not in ("trending", "popular") or trending.healthy)
    return served, view, ranked, applied, _answer(request, served, view, ranked, q.placement, live_signals,
                                                  p["fields"], applied)


@api.get("/v1/recommendations", summary="Recommendations for a placement, a shopper and the page",
         description="Ranked items with the rung that answered (`personalized`, `session`, `context`, "
                     "`trending`, `popular`), why each item is there and the merchandising rules that "
                     "changed the list. Never an error for lack of signals: a cold or degraded request "
                     "gets a non-personalized list, marked as such.",
         params=RECOMMENDATION_PARAMS, response=Recommendations, errors=(400, 404, 503))
async def get_recommendations(request: web.Request, p: dict) -> web.Response:
    return json_response((await _recommendations(request, p))[-1])


@api.get("/v1/admin/explain", summary="Why each item of a recommendation is where it is: score parts, "
                                      "filters, rules (the same parameters as /v1/recommendations)",
         params=(*RECOMMENDATION_PARAMS, Param("explain_item", "An item to follow: where it went, or why it "
                                                               "is not in the answer.")),
         response=Explanation, errors=(400, 404, 503), admin=True)
async def get_explain(request: web.Request, p: dict) -> web.Response:
    trace = Trace()
    _, view, ranked, applied, answer = await _recommendations(request, p, trace)
    items = [ExplainedItem(item_id=x.item_id, position=n + 1, score=x.score, reason=x.reason,
                           parts=trace.parts.get(i, {}), pinned_by=trace.pinned.get(i))
             for n, (i, x) in enumerate(zip(ranked.items, answer.items, strict=True))]
    target = None
    if p["explain_item"]:
        i = view.index_of(p["explain_item"])
        target = {"item_id": p["explain_item"], "known": i is not None,
                  "position": ranked.items.index(i) + 1 if i in ranked.items else None,
                  "by_list": [{"rung": x["rung"], "fate": x.get("target")} for x in trace.lists],
                  "parts": trace.parts.get(i) if i is not None else None}
    return json_response(Explanation(answer=answer, items=items, lists=trace.lists,
                                     rules_in_scope=applied.effect.ids, target=target))


async def _similar(request: web.Request, item_ids: list[str], k: int, fields: list[str]) -> web.Response:
    served = current(request)
    view = request.app[CATALOG].view(served.model)
    known = [i for i in map(view.index_of, item_ids) if i is not None]
    if not known:
        raise NotFound(f"unknown item(s): {', '.join(x[:128] for x in item_ids[:5])}",
                       extra={"parameter": "item_id"})
    label = view.id_of(known[0]) if len(known) == 1 else "your cart"
    applied = request.app[RULES].applied(view, "similar", int(time.time() * 1000))
    ranked = similar(served.model, served.caches, known, label, k, [], request.app[SETTINGS].recommend,
                     view=view, rules=applied, trending=request.app[TRENDING])
    return json_response(_answer(request, served, view, ranked, None, True, fields, applied))


@api.get("/v1/items/{item_id}/similar", summary="Items similar to one item",
         params=(Param("item_id", "The item.", where="path"), K, ITEM_FIELDS), response=Recommendations,
         errors=(400, 404, 503))
async def get_similar_item(request: web.Request, p: dict) -> web.Response:
    return await _similar(request, [p["item_id"]], p["k"], p["fields"])


@api.get("/v1/items/similar", summary="Items similar to several items (a whole cart)",
         params=(Param("item_id", "The items.", kind="ids", required=True), K, ITEM_FIELDS),
         response=Recommendations, errors=(400, 404, 503))
async def get_similar_items(request: web.Request, p: dict) -> web.Response:
    return await _similar(request, p["item_id"], p["k"], p["fields"])


@api.get("/v1/trending", summary="Trending items from live, decayed counters, topped up with popular "
                                 "items to k (all popular when live counters are unavailable)",
         params=(CATEGORY, K, ITEM_FIELDS), response=Recommendations, errors=(400, 404, 503))
async def get_trending(request: web.Request, p: dict) -> web.Response:
    served = current(request)
    view = request.app[CATALOG].view(served.model)
    _check_category(view, p["category"])
    q = Query(placement="trending", user_id=None, session_id=None, k=p["k"], now_ms=int(time.time() * 1000),
              category=p["category"])
    trending = request.app[TRENDING]
    applied = request.app[RULES].applied(view, "trending", q.now_ms)
    ranked = recommend(served.model, served.caches, q, None, trending, request.app[SETTINGS].recommend,
                       view=view, rules=applied)
    return json_response(_answer(request, served, view, ranked, None, trending.healthy, p["fields"], applied))
