"""GET /v1/variants, the experiments document (admin), results (admin) and the results page."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import orjson
from aiohttp import web

from server.appkeys import EXPERIMENTS, REQUEST_ID, SETTINGS
from server.experiments.decide import decide
from server.experiments.definitions import DefinitionError
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
from server.recommend.params import SESSION_ID, USER_ID
from server.schemas import VariantsAnswer, slot_answers
from server.shopper import read_shopper
from server.web.api import Api, Param, json_response
from server.web.errors import ApiError, BadRequest, NotFound

api = Api("experiments")
PAGES = Path(__file__).with_name("pages")
class StatsUnavailable(ApiError):
    status, code = 501, "not_installed"


@api.get("/v1/variants", summary="The content of a page's slots for a shopper: an experiment's variant, a "
                                 "personalization rule's choice, or the slot's default",
         params=(SLOTS, USER_ID, SESSION_ID, CHANNEL, PAGE, ATTRIBUTES, FORCE), response=VariantsAnswer,
         errors=(400, 401))
async def get_variants(request: web.Request, p: dict) -> web.Response:
    if not (p["user_id"] or p["session_id"]):
        raise BadRequest("give `session_id` (and `user_id` for a signed-in shopper)",
                         extra={"parameter": "session_id"})
    forced = forced_variants(request, p["force"])
    experiments = request.app[EXPERIMENTS]
    settings = request.app[SETTINGS]
    now_ms = int(time.time() * 1000)
    state = await read_shopper(experiments.sessions, experiments.store, user_id=p["user_id"],
                               session_id=p["session_id"], now_ms=now_ms,
                               timeout_s=settings.recommend.deadline_ms / 1000 * 0.7, assignments=True)
    attrs, covariate = shopper_targeting(request, state, user_id=p["user_id"], session_id=p["session_id"],
                                         channel=p["channel"], page=p["page"], attributes=p["attributes"])
    decisions = decide(experiments.snapshot.compiled, session_id=p["session_id"] or p["user_id"],
                       user_id=p["user_id"], attributes=attrs, slots=p["slot"],
                       user_sticky=state.user_assignments, session_sticky=state.session_assignments,
                       forced=forced, now_ms=now_ms, covariate=covariate)
    if state.degraded is None:  # without the sticky records, a decision must not be recorded
        await record(request, decisions)
    return json_response(VariantsAnswer(slots=slot_answers(decisions.slots),
                                        version=experiments.snapshot.version,
                                        live_signals=state.degraded is None, request_id=request[REQUEST_ID]))


@api.get("/v1/admin/experiments", summary="The experiments document being served (slots, experiments, rules)",
         responses={"200": {"description": "The document (docs/experiments.md)"}}, admin=True)
async def get_experiments(request: web.Request, p: dict) -> web.Response:
    return json_response(msgspec.to_builtins(request.app[EXPERIMENTS].snapshot.definitions))


@api.route("PUT", "/v1/admin/experiments",
           summary="Replace the experiments document: validated first, a bad one is refused with every "
                   "problem listed and changes nothing",
           body={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
           responses={"200": {"description": "The stored document with its new version"}},
           errors=(400, 413, 503), admin=True)
async def put_experiments(request: web.Request, p: dict) -> web.Response:
    snapshot = request.app[EXPERIMENTS].snapshot
    try:
        defs = snapshot.parse(await request.read())
    except DefinitionError as exc:
        raise BadRequest("the experiments document was refused; nothing changed",
                         extra={"errors": exc.errors}) from None
    stored = await request.app[EXPERIMENTS].publish(defs)
    return json_response(msgspec.to_builtins(stored))


@api.get("/v1/admin/experiments/{key}/results",
         summary="An experiment's results: per variant units, conversions, rates, lift against control "
                 "with intervals, SRM, daily series",
         params=(Param("key", "The experiment.", where="path"),),
         responses={"200": {"description": "Results (docs/experiments.md)"}}, errors=(404, 501, 503),
         admin=True)
async def get_results(request: web.Request, p: dict) -> web.Response:
    experiments = request.app[EXPERIMENTS]
    try:
        body = await experiments.results(p["key"])
    except KeyError:
        raise NotFound(f"no experiment {p['key'][:64]!r}", extra={"parameter": "key"}) from None
    except ModuleNotFoundError as exc:
        raise StatsUnavailable(f"results need the statistics extra ({exc.name} is missing): "
                               "pip install 'vitrine[stats]'") from None
    return web.Response(body=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
                        content_type="application/json")


@api.get("/experiments/{key}",
         summary="The results page of an experiment (HTML; its data needs the admin token, given in the "
                 "page or as #token=… in its address)",
         params=(Param("key", "The experiment.", where="path"),),
         responses={"200": {"description": "A self-contained HTML page", "content": {"text/html": {}}}})
async def results_page(request: web.Request, p: dict) -> web.Response:
    return web.Response(body=(PAGES / "results.html").read_bytes(), content_type="text/html",
                        headers={"Cache-Control": "no-store", "Content-Security-Policy":
                                 "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"})

