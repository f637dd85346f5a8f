"""PUT /v1/consent (the storefront), the segment rules (admin), a customer's profile (admin) and
their erasure (admin)."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

import msgspec
from aiohttp import web
from redis.exceptions import RedisError

from models.segments import RuleError
from server.appkeys import CUSTOMERS, EXPERIMENTS, MODELS, REQUEST_ID, SESSIONS, SETTINGS
from server.customers.erasure import erase_customer
from server.customers.profile import read_profile
from server.customers.records import ConsentRecord
from server.customers.rules import parse_body, unpublished_windows
from server.store.keys import Keys
from server.store.records import StoreUnavailable
from server.web.api import Api, Param, json_response
from server.web.errors import BadRequest, Unavailable

api = Api("customers")
REF = "#/components/schemas/{}"
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
_Purpose = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern="^[A-Za-z0-9_.-]+$")]


class ConsentBody(msgspec.Struct, forbid_unknown_fields=True):
    """A shopper's choice, as the storefront's consent banner or account page recorded it."""

    personalization: Annotated[bool, msgspec.Meta(
        description="Whether Vitrine may use the shopper's behaviour to personalize.")]
    user_id: Annotated[_Id, msgspec.Meta(description="The signed-in shopper.")] | None = None
    session_id: Annotated[_Id, msgspec.Meta(description="The session (anonymous ones too).")] | None = None
    purposes: Annotated[list[_Purpose], msgspec.Meta(
        max_length=16, description="Other purposes granted (`analytics`, `marketing`…): the targeting "
                                   "attribute `consent` lists them")] = []


class ConsentAnswer(msgspec.Struct):
    personalization: bool
    purposes: list[str]
    user_id: str | None
    session_id: str | None
    at_ms: int
    request_id: str


def _unavailable(exc: StoreUnavailable) -> Unavailable:
    return Unavailable(f"Redis unavailable, nothing changed for sure: retry ({exc})",
                       headers={"Retry-After": "1"})


@api.route("PUT", "/v1/consent",
           summary="Record a shopper's consent to personalization (per customer and per session)",
           description="Called by the storefront when the shopper chooses. With personalization off, "
                       "their later events leave no key about them in Redis (only anonymous trending "
                       "counts), what was held about their behaviour is deleted, and recommendations "
                       "are the same as any shopper's on that page, with `personalization: off`. "
                       "The choice is answered once stored.",
           body={"required": True, "content": {"application/json": {"schema": {"$ref": REF.format(
               "ConsentBody")}}}},
           response=ConsentAnswer, schemas=(ConsentBody,), errors=(400, 503))
async def put_consent(request: web.Request, p: dict) -> web.Response:
    try:
        body = msgspec.json.decode(await request.read(), type=ConsentBody)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadRequest(f"bad consent body: {exc}") from None
    if not (body.user_id or body.session_id):
        raise BadRequest("give `user_id`, `session_id` or both")
    now_ms = int(time.time() * 1000)
    record = ConsentRecord(body.personalization, now_ms, tuple(dict.fromkeys(body.purposes)))
    tags = ([Keys.shopper_tag(body.user_id, None)] if body.user_id else []) + (
        [Keys.shopper_tag(None, body.session_id)] if body.session_id else [])
    try:
        await request.app[CUSTOMERS].store.set_consent(tags, record, now_ms)
    except StoreUnavailable as exc:
        raise _unavailable(exc) from None
    return json_response(ConsentAnswer(record.personalization, list(record.purposes), body.user_id,
                                       body.session_id, now_ms, request[REQUEST_ID]))


@api.get("/v1/admin/segments", summary="The segment rules in force, where they come from (`stored`, "
                                       "`model`, `default`) and their version",
         responses={"200": {"description": "The rules (docs/customers.md)"}}, admin=True)
async def get_segments(request: web.Request, p: dict) -> web.Response:
    customers = request.app[CUSTOMERS]
    published = customers.published(request.app[MODELS].current)
    rules, source = customers.rules.effective(published)
    return json_response({"source": source, "version": customers.rules.version, "rules": rules.as_dict(),
                          "warnings": unpublished_windows(rules, published)})


@api.route("PUT", "/v1/admin/segments",
           summary="Replace the segment rules: validated first (400 names the rule and field, nothing "
                   "changes); every worker applies them within a second",
           body={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
           responses={"200": {"description": "The stored rules with their version and warnings"}},
           errors=(400, 413, 503), admin=True)
async def put_segments(request: web.Request, p: dict) -> web.Response:
    customers = request.app[CUSTOMERS]
    try:
        rules = parse_body(await request.read())
    except RuleError as exc:
        raise BadRequest(f"the segment rules were refused; nothing changed: {exc}") from None
    version = await customers.rules.publish(rules)
    published = customers.published(request.app[MODELS].current)
    return json_response({"source": "stored", "version": version, "rules": rules.as_dict(),
                          "warnings": unpublished_windows(rules, published)})


@api.route("DELETE", "/v1/admin/segments",
           summary="Remove the stored segment rules: the served model's (or the default) apply again",
           responses={"200": {"description": "The rules now in force"}}, errors=(503,), admin=True)
async def delete_segments(request: web.Request, p: dict) -> web.Response:
    customers = request.app[CUSTOMERS]
    version = await customers.rules.publish(None)
    published = customers.published(request.app[MODELS].current)
    rules, source = customers.rules.effective(published)
    return json_response({"source": source, "version": version, "rules": rules.as_dict(), "warnings": []})


USER = Param("user_id", "The customer.", where="path")


@api.get("/v1/users/{user_id}/profile",
         summary="Everything Vitrine holds on a customer and why it shows what it shows: consent, live "
                 "segment (the rule and the figures it read), churn probability, purchases, items due "
                 "again, affinities, recent events, experiment assignments, trigger state, sessions, keys",
         params=(USER,), responses={"200": {"description": "The profile (docs/customers.md)"}},
         errors=(503,), admin=True)
async def get_profile(request: web.Request, p: dict) -> web.Response:
    try:
        body = await read_profile(request.app[CUSTOMERS], request.app[SESSIONS],
                                  request.app[EXPERIMENTS].store, request.app[MODELS].current, p["user_id"],
                                  int(time.time() * 1000))
    except StoreUnavailable as exc:
        raise _unavailable(exc) from None
    return json_response(body)


@api.route("DELETE", "/v1/users/{user_id}",
           summary="Erase a customer: every key and unexported stream entry about them and the sessions "
                   "linked to them, their timers and fired triggers; a tombstone keeps them out of the "
                   "next export and training. Answers once done (a retry completes a failed one)",
           params=(USER, Param("session_id", "More sessions of theirs to erase (anonymous ones the "
                               "server never saw them sign in with).", kind="ids", max_items=100)),
           responses={"200": {"description": "What was erased (docs/customers.md)"}}, errors=(400, 503),
           admin=True)
async def delete_user(request: web.Request, p: dict) -> web.Response:
    settings = request.app[SETTINGS]
    customers = request.app[CUSTOMERS]
    experiments = [x.key for x in request.app[EXPERIMENTS].snapshot.definitions.experiments]
    try:
        erased = await erase_customer(
            customers.store.client, customers.store.keys, settings, user_id=p["user_id"],
            sessions=p["session_id"], experiments=experiments,
            tombstones_root=settings.data.archive_root,
            now_ms=int(time.time() * 1000))
    except (RedisError, OSError) as exc:
        raise Unavailable(f"erasure not complete ({type(exc).__name__}): retry, it resumes",
                          headers={"Retry-After": "1"}) from None
    return json_response({**dataclasses.asdict(erased), "request_id": request[REQUEST_ID]})
