"""GET /v1/recommendations, /v1/page, /v1/items/{id}/similar, /v1/items/similar, /v1/trending,
and the admin debug view of a recommendation (/v1/admin/explain).

Each handler parses (the declarations below), does at most one Redis read (the shopper's live
state, within the request's deadline), calls the domain function once and serialises. The live
catalog's view of the items and the merchandising rules come from in-process mirrors."""

from __future__ import annotations

import time
from dataclasses import replace

import msgspec
from aiohttp import web

from server.appkeys import (
    CATALOG,
    CUSTOMERS,
    EXPERIMENTS,
    METRICS,
    REQUEST_ID,
    RULES,
    RUNG,
    SESSIONS,
    SETTINGS,
    STARTED,
    TRENDING,
)
from server.catalog.view import ItemsView
from server.customers.serving import BUY_AGAIN, prepare, rank_buy_again
from server.experiments.decide import Decisions, SlotDecision, decide
from server.experiments.serving import (
    ATTRIBUTES,
    CHANNEL,
    FORCE,
    PAGE,
    SLOTS,
    forced_variants,
    record,
    shopper_targeting,
)
from server.experiments.strategy import placement_strategy
from server.merchandising.applied import Applied
from server.merchandising.compiled import Shopper
from server.ops.models import Served
from server.recommend.explain import Trace
from server.recommend.finish import Ranked
from server.recommend.ladder import recommend, similar
from server.recommend.params import (
    CATEGORY,
    EXCLUDE,
    ITEM_FIELDS,
    ITEM_IDS,
    PLACEMENT,
    PLACEMENTS,
    SESSION_ID,
    USER_ID,
    K,
    current,
)
from server.recommend.retrieval import Query
from server.schemas import (
    CategoryCount,
    ExplainedItem,
    Explanation,
    PageAnswer,
    Recommendations,
    RecommendedItem,
    slot_answers,
)
from server.shopper import ShopperState, read_shopper
from server.web.api import Api, Param, json_response
from server.web.errors import BadRequest, NotFound

api = Api("recommendations")
EXPLAIN_ITEM = Param("explain_item", "An item to follow: where it went, or why it is not in the answer.")


def _check_category(view: ItemsView, category: str | None) -> None:
    if category is not None and category not in view.category_code:
        raise NotFound(f"unknown category {category[:128]!r}", extra={"parameter": "category"})


def _answer(request: web.Request, served: Served, view: ItemsView, ranked: Ranked, placement: str | None,
            live_signals: bool, decision: SlotDecision | None = None, fields: list[str] = (),
            rules: Applied | None = None, personalization: bool = True) -> Recommendations:
    id_of, names = view.id_of, view.categories
    codes = view.category[ranked.items].tolist() if ranked.items else []  # one lookup, not k
    items = [RecommendedItem(id_of(i), round(s, 6), r, names[c] if c >= 0 else None)
             for i, s, r, c in zip(ranked.items, ranked.scores, ranked.reasons, codes, strict=True)]
    if fields:
        _add_fields(view, ranked.items, items, fields)
    request.app[METRICS].rung(ranked.rung)
    request[RUNG] = ranked.rung  # the access log's and the latency histogram's (a page: its last)
    chosen = decision is not None and decision.experiment is not None
    return Recommendations(items=items, rung=ranked.rung, model_version=served.model.version,
                           request_id=request[REQUEST_ID], placement=placement, live_signals=live_signals,
                           experiment=decision.experiment if chosen else None,
                           variant=decision.variant if chosen else None,
                           rules=rules.changed_rules() if rules is not None else [],
                           personalization="on" if personalization else "off")


def _add_fields(view: ItemsView, rows: list[int], items: list[RecommendedItem], fields: list[str]) -> None:
    """The live catalog's metadata of each item, as `fields=` asks."""
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


def _query(view: ItemsView, p: dict, placement: str, now_ms: int) -> Query:
    q = Query(placement=placement, user_id=p["user_id"], session_id=p["session_id"], k=p["k"], now_ms=now_ms,
              context_items=p["item_id"], category=p["category"], exclude=frozenset(p["exclude"]))
    # A product or cart placement without `item_id`, a category one without `category`, answer
    # from the shopper alone: never an error page for a missing context (DESIGN.md), and the
    # OpenAPI document can't make one parameter depend on another.
    _check_category(view, q.category)
    return q


async def _read(request: web.Request, user_id: str | None, session_id: str | None, now_ms: int, *,
                assignments: bool, served: Served | None = None) -> ShopperState:
    """The shopper's live state (and assignments) within 70% of what is left of the deadline;
    `degraded` says why when Redis couldn't answer in time."""
    settings = request.app[SETTINGS]
    left = request[STARTED] + settings.recommend.deadline_ms / 1000 - time.perf_counter()
    experiments, customers = request.app[EXPERIMENTS], request.app[CUSTOMERS]
    state = await read_shopper(request.app[SESSIONS], experiments.store, user_id=user_id,
                               session_id=session_id, now_ms=now_ms, timeout_s=max(left, 0.001) * 0.7,
                               assignments=assignments, customers=customers.store,
                               as_of_ms=customers.as_of_ms(served))
    if state.degraded:
        request.app[METRICS].degraded.labels(state.degraded).inc()
        request.app[METRICS].redis_error("read", state.degraded == "redis_timeout")
    return state


def _rules(request: web.Request, served: Served, view: ItemsView, q: Query, state: ShopperState,
           channel: str | None, attributes: dict | None = None) -> Applied:
    """The merchandising rules in scope: the shopper's published segment and the targeting
    attributes experiments use, computed only when a rule of the placement asks."""
    def shopper() -> Shopper:
        # The live segment (server/customers/: the model's statistics plus the purchases since).
        scores = (request.app[CUSTOMERS].scores(served, q.user_id, state.customer, q.now_ms)
                  if q.user_id else None)
        segment = scores.segment if scores is not None else None
        return Shopper(segment, lambda: shopper_targeting(
            request, state, user_id=q.user_id, session_id=q.session_id, channel=channel, page=q.placement,
            attributes=attributes)[0])
    return request.app[RULES].applied(view, q.placement, q.now_ms, shopper)


def _rank(request: web.Request, served: Served, view: ItemsView, q: Query, state: ShopperState,
          decision: SlotDecision | None, *, channel: str | None = None, fields: list[str] = (),
          attributes: dict | None = None,
          trace: Trace | None = None) -> tuple[Ranked, Applied, Recommendations]:
    trending = request.app[TRENDING]
    cfg = request.app[SETTINGS].recommend
    if decision is not None:
        cfg = placement_strategy(decision, cfg)
    prepared = prepare(request.app[CUSTOMERS], served, q, state)
    rules = _rules(request, served, view, prepared.query, state, channel, attributes)
    if q.placement == BUY_AGAIN:
        ranked = rank_buy_again(request.app[CUSTOMERS], served, prepared, view=view, rules=rules)
    else:
        ranked = recommend(served.model, served.caches, prepared.query, prepared.live, trending, cfg,
                           view=view, rules=rules, trace=trace)
    live_signals = state.degraded is None and (ranked.rung not in ("trending", "popular") or trending.healthy)
    answer = _answer(request, served, view, ranked, q.placement, live_signals, decision, fields, rules,
                     prepared.personalization)
    return ranked, rules, answer


async def _decide(request: web.Request, state: ShopperState, *, user_id: str | None, session_id: str | None,
                  now_ms: int, slots: list[str], placements: list[str], channel: str | None = None,
                  page: str | None = None, attributes: dict | None = None,
                  forced: dict | None = None) -> Decisions | None:
    """Variants for the slots and strategies for the placements, recorded; None without a
    shopper or without the shopper's sticky assignments (Redis down: defaults apply)."""
    if not (user_id or session_id) or state.degraded is not None:
        return None
    attrs, covariate = shopper_targeting(request, state, user_id=user_id, session_id=session_id,
                                         channel=channel, page=page, attributes=attributes)
    decisions = decide(request.app[EXPERIMENTS].snapshot.compiled, session_id=session_id or user_id,
                       user_id=user_id, attributes=attrs, slots=slots, placements=placements,
                       user_sticky=state.user_assignments, session_sticky=state.session_assignments,
                       forced=forced, now_ms=now_ms, covariate=covariate)
    await record(request, decisions, state)
    return decisions


RECOMMENDATION_PARAMS = (PLACEMENT, USER_ID, SESSION_ID, ITEM_IDS, CATEGORY, K, EXCLUDE, CHANNEL,
                         ITEM_FIELDS)


async def _recommendations(request: web.Request, p: dict, trace: Trace | None = None):
    served = current(request)  # one model for the whole request, even if a swap happens
    view = request.app[CATALOG].view(served.model)
    now_ms = int(time.time() * 1000)
    q = _query(view, p, p["placement"], now_ms)
    switched = q.placement in request.app[EXPERIMENTS].snapshot.compiled.by_placement
    state = await _read(request, q.user_id, q.session_id, now_ms, assignments=switched, served=served)
    decisions = (await _decide(request, state, user_id=q.user_id, session_id=q.session_id, now_ms=now_ms,
                               slots=[], placements=[q.placement], channel=p["channel"], page=q.placement)
                 if switched else None)
    decision = decisions.placements.get(q.placement) if decisions else None
    if trace is not None and p.get("explain_item"):
        trace.target = view.index_of(p["explain_item"])
    return view, *_rank(request, served, view, q, state, decision, channel=p["channel"], fields=p["fields"],
                        trace=trace)


@api.get("/v1/recommendations", summary="Recommendations for a placement, a shopper and the page",
         description="Ranked items with the rung that answered (`personalized`, `session`, `context`, "
                     "`trending`, `popular`), why each item is there and the merchandising rules that "
                     "changed the list. Never an error for lack of signals: a cold or degraded request "
                     "gets a non-personalized list, marked as such. An experiment on the placement may "
                     "switch its strategy (`experiment`, `variant`).",
         params=RECOMMENDATION_PARAMS, response=Recommendations, errors=(400, 404, 503))
async def get_recommendations(request: web.Request, p: dict) -> web.Response:
    return json_response((await _recommendations(request, p))[-1])


@api.get("/v1/admin/explain", summary="Why each item of a recommendation is where it is: score parts, "
                                      "filters, rules (the parameters of /v1/recommendations)",
         params=(*RECOMMENDATION_PARAMS, EXPLAIN_ITEM), response=Explanation, errors=(400, 404, 503),
         admin=True)
async def get_explain(request: web.Request, p: dict) -> web.Response:
    trace = Trace()
    view, ranked, applied, answer = await _recommendations(request, p, trace)
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


@api.get("/v1/page", summary="A whole page in one call: its recommendation placements and its slots' "
                             "variants, from one read of the shopper",
         description="Each placement is ranked as by /v1/recommendations with the page's context "
                     "(`item_id`, `category`); each slot is decided as by /v1/variants. One Redis round "
                     "trip for the shopper.",
         params=(Param("placement", "The page's placements (home, product, cart…).", kind="ids", max_items=5,
                       choices=PLACEMENTS),
                 replace(SLOTS, required=False), USER_ID, SESSION_ID, ITEM_IDS, CATEGORY, K, EXCLUDE, CHANNEL,
                 PAGE, ATTRIBUTES, FORCE, ITEM_FIELDS),
         response=PageAnswer, errors=(400, 401, 404, 503))
async def get_page(request: web.Request, p: dict) -> web.Response:
    served = current(request)
    view = request.app[CATALOG].view(served.model)
    now_ms = int(time.time() * 1000)
    unknown = [x for x in p["placement"] if x not in PLACEMENTS]
    if unknown:
        raise BadRequest(f"unknown placement {unknown[0][:40]!r} (one of: {', '.join(PLACEMENTS)})",
                         extra={"parameter": "placement"})
    if not (p["placement"] or p["slot"]):
        raise BadRequest("give at least one `placement` or `slot`", extra={"parameter": "placement"})
    queries = [_query(view, p, placement, now_ms) for placement in dict.fromkeys(p["placement"])]
    forced = forced_variants(request, p["force"])
    compiled = request.app[EXPERIMENTS].snapshot.compiled
    switched = [q.placement for q in queries if q.placement in compiled.by_placement]
    state = await _read(request, p["user_id"], p["session_id"], now_ms,
                        assignments=bool(p["slot"] or switched), served=served)
    decisions = await _decide(request, state, user_id=p["user_id"], session_id=p["session_id"], now_ms=now_ms,
                              slots=p["slot"], placements=switched, channel=p["channel"],
                              page=p["page"], attributes=p["attributes"], forced=forced)
    if decisions is None and p["slot"]:  # no shopper, or Redis down: rules and defaults only
        decisions = decide(compiled, session_id="", attributes=p["attributes"] or {}, slots=p["slot"],
                           now_ms=now_ms)
    placements = {q.placement: _rank(request, served, view, q, state,
                                     decisions.placements.get(q.placement) if decisions else None,
                                     channel=p["channel"], fields=p["fields"], attributes=p["attributes"])[-1]
                  for q in queries}
    slots = slot_answers(decisions.slots) if decisions else {}
    off = state.customer is not None and not state.customer.personalization
    return json_response(PageAnswer(recommendations=placements, slots=slots,
                                    version=request.app[EXPERIMENTS].snapshot.version,
                                    live_signals=state.degraded is None, request_id=request[REQUEST_ID],
                                    personalization="off" if off else "on"))


async def _similar(request: web.Request, item_ids: list[str], k: int, fields: list[str]) -> web.Response:
    served = current(request)
    view = request.app[CATALOG].view(served.model)
    known = [i for i in map(view.index_of, item_ids) if i is not None]
    if not known:
        raise NotFound(f"unknown item(s): {', '.join(x[:128] for x in item_ids[:5])}",
                       extra={"parameter": "item_id"})
    label = view.id_of(known[0]) if len(known) == 1 else "your cart"
    rules = request.app[RULES].applied(view, "similar", int(time.time() * 1000))
    ranked = similar(served.model, served.caches, known, label, k, [], request.app[SETTINGS].recommend,
                     view=view, rules=rules, trending=request.app[TRENDING])
    return json_response(_answer(request, served, view, ranked, None, True, fields=fields, rules=rules))


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
    rules = request.app[RULES].applied(view, "trending", q.now_ms)
    ranked = recommend(served.model, served.caches, q, None, trending, request.app[SETTINGS].recommend,
                       view=view, rules=rules)
    return json_response(_answer(request, served, view, ranked, None, trending.healthy, fields=p["fields"],
                                 rules=rules))


class Categories(msgspec.Struct):
    categories: list[CategoryCount]
    model_version: str


@api.get("/v1/categories", summary="The catalog's categories with their item counts (for menus and "
                                   "category pages)",
         response=Categories, schemas=(CategoryCount,), errors=(503,))
async def get_categories(request: web.Request, p: dict) -> web.Response:
    served = current(request)
    counts = dict(served.caches.category_counts(served.model))
    view = request.app[CATALOG].view(served.model)
    for i in range(view.n_model, view.n_items):  # the live catalog's new items (a few)
        name = view.category_of(i)
        if name is not None and view.visible[i]:
            counts[name] = counts.get(name, 0) + 1
    return json_response(Categories([CategoryCount(c, n) for c, n in sorted(counts.items())],
                                     served.model.version))
