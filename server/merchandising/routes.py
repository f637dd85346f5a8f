"""GET/PUT /v1/admin/rules, DELETE /v1/admin/rules/{rule_id}, and the rules' place in the app
(the worker's compiled rules, refreshed in the background; the rules file applied at start)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from server.appkeys import CATALOG, CUSTOMERS, MODELS, REDIS, REQUEST_ID, RULES, SETTINGS
from server.merchandising.live import LiveRules
from server.merchandising.rules import RuleError, parse_rules, read_rules_file, rules_of
from server.merchandising.store import RulesStore
from server.schemas import RulesListing, RulesSaved, RuleState
from server.store.records import StoreUnavailable
from server.web.api import Api, Param, json_response
from server.web.errors import BadRequest, InvalidRules, NotFound, Unavailable

api = Api("merchandising")
log = logging.getLogger("vitrine.rules")
REPLACE = Param("replace", "`true`: the body becomes the whole rule set (rules not in it are removed).",
                kind="enum", choices=("true", "false"), default="false")


async def rules_ctx(app: web.Application) -> AsyncIterator[None]:
    """The worker's rules: the rules file applied if it changed, then followed in the background
    every `catalog.refresh_s`. Registered with the model holder so that a model about to be
    served gets its catalog view and rule matches built in the loader's thread."""
    settings = app[SETTINGS]
    catalog = app[CATALOG]
    rules = app[RULES] = LiveRules(RulesStore(app[REDIS].wire, settings.redis), settings.catalog.refresh_s,
                                   catalog.views)
    app[MODELS].on_load.append(lambda model: rules.prepare(model, catalog.prepare(model)))
    if settings.catalog.rules_file is not None:
        await _apply_file(rules, settings.catalog.rules_file)
    with contextlib.suppress(StoreUnavailable):
        await rules.refresh()
    task = asyncio.create_task(rules.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _apply_file(rules: LiveRules, path) -> None:
    """A bad file (or Redis down) is logged: the rules already in Redis keep running."""
    try:
        parsed = parse_rules(read_rules_file(path))
        if await rules.apply_file(parsed):
            log.info("rules file %s applied: %d rules", path, len(parsed))
    except (ValueError, StoreUnavailable) as exc:
        log.error("rules file %s not applied: %s", path, exc)


def _listing(request: web.Request) -> RulesListing:
    rules = request.app[RULES]
    now = int(time.time() * 1000)
    running = {c.id: c for c in rules.ruleset.rules}
    errors = {**rules.decode_errors, **rules.ruleset.errors}
    out = []
    for rule_id, raw in sorted(rules.stored.items()):
        body = orjson.loads(raw) if rule_id not in rules.decode_errors else {}
        c = running.get(rule_id)
        out.append(RuleState(id=rule_id, kind=str(body.get("kind", "?")), applied=c is not None,
                             live_now=c is not None and c.live_at(now), rule=body, error=errors.get(rule_id)))
    return RulesListing(version=rules.ruleset.version, rules=out, request_id=request[REQUEST_ID])


@api.get("/v1/admin/rules", summary="The merchandising rules this worker runs, each with its state",
         response=RulesListing, admin=True)
async def get_rules(request: web.Request, p: dict) -> web.Response:
    return json_response(_listing(request))


@api.route("PUT", "/v1/admin/rules", summary="Create or replace merchandising rules (one, a list, or "
                                             "{\"rules\": [...]}), by id",
           description="Every rule is checked first (kinds, fields, placements, segments, conditions, "
                       "schedule); if any is wrong nothing is stored and `errors` lists each problem with "
                       "the rule's index, id and field. Every worker runs the new rules within "
                       "`catalog.refresh_s` plus two Redis round trips. Format: docs/catalog.md.",
           params=(REPLACE,), body={"required": True, "content": {"application/json": {"schema": {
               "description": "a rule, a list of rules (empty with `replace=true`: remove them all), or "
                              "{\"rules\": [...]}",
               "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}}}},
           response=RulesSaved, errors=(400, 422, 503), admin=True)
async def put_rules(request: web.Request, p: dict) -> web.Response:
    try:
        items = rules_of(orjson.loads(await request.read()))
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    live = request.app[RULES]
    served = request.app[MODELS].current
    # The segments shoppers are in now: the stored segment rules, else the served model's.
    customers = request.app[CUSTOMERS]
    names = customers.rules.effective(customers.published(served) if served is not None else None)[0].names
    try:
        rules = parse_rules(items, segments=names)
    except RuleError as exc:
        raise InvalidRules(f"{len(exc.errors)} problem(s), nothing was stored",
                           extra={"errors": exc.errors}) from None
    replace = p["replace"] == "true"
    limit = request.app[SETTINGS].catalog.max_rules
    ids = {r.id for r in rules}
    try:
        _, stored = await live.store.load()
        if len(ids if replace else set(stored) | ids) > limit:
            raise InvalidRules(f"at most {limit} rules (catalog.max_rules)", extra={"errors": []})
        version = await live.store.put(rules, remove=sorted(set(stored) - ids) if replace else [])
    except StoreUnavailable as exc:
        raise _unavailable(exc) from None
    live.wake()
    return json_response(RulesSaved(version=version, saved=[r.id for r in rules],
                                    request_id=request[REQUEST_ID]))


@api.route("DELETE", "/v1/admin/rules/{rule_id}", summary="Remove a merchandising rule",
           params=(Param("rule_id", "The rule.", where="path"),), response=RulesSaved, errors=(404, 503),
           admin=True)
async def delete_rule(request: web.Request, p: dict) -> web.Response:
    live = request.app[RULES]
    try:
        version = await live.store.delete(p["rule_id"])
    except StoreUnavailable as exc:
        raise _unavailable(exc) from None
    if version is None:
        raise NotFound(f"no rule {p['rule_id']!r}", extra={"parameter": "rule_id"})
    live.wake()
    return json_response(RulesSaved(version=version, saved=[], request_id=request[REQUEST_ID]))


def _unavailable(exc: StoreUnavailable) -> Unavailable:
    return Unavailable(f"rules store unavailable, retry later: {exc}", headers={"Retry-After": "1"})
