"""POST /v1/events: validated at the door, acknowledged only once Redis has them."""

from __future__ import annotations

import logging
import math
import time

import msgspec
import orjson
from aiohttp import web

from models.events import MAX_ID_LEN, Event, ts_problem
from server.appkeys import EXPERIMENTS, KEY_ID, LIMITER, METRICS, REQUEST_ID, SESSIONS, SETTINGS, TRIGGERS
from server.events.known import known_ids, prices
from server.ops.health import LogOnce
from server.schemas import EventsAccepted, Rejected
from server.settings import Settings
from server.store.records import StoreUnavailable
from server.web.api import Api, json_response
from server.web.errors import BadRequest, PayloadTooLarge, TooManyRequests, Unavailable, Unprocessable
from server.web.security import ANONYMOUS

api = Api("events")
REF = "#/components/schemas/{}"
log = logging.getLogger("vitrine.events")
_log_once = LogOnce(log, every_s=60.0)


def _body(settings: Settings) -> dict:
    """The body's schema, with the batch limit the server enforces."""
    batch = {"type": "array", "items": {"$ref": REF.format("Event")}, "minItems": 1,
             "maxItems": settings.server.max_batch_events}
    return {"required": True, "content": {"application/json": {"schema": {"oneOf": [
        {"$ref": REF.format("Event")},
        {"type": "object", "properties": {"events": batch}, "required": ["events"],
         "title": "EventBatch"},
        batch]}}}}


def _events_of(payload: object) -> list:
    # {"events": [...]}; a single event may carry an unknown field named `events` (ignored).
    if isinstance(payload, dict) and "events" in payload and "event_id" not in payload:
        events = payload["events"]
        if not isinstance(events, list):
            raise BadRequest("`events` must be a list of events")
        return events
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list):
        return payload
    raise BadRequest("the body must be an event, a list of events or {\"events\": [...]}")


@api.post("/v1/events", summary="Record storefront events (one, a list, or {\"events\": [...]})",
          description="Each event is validated on its own; valid ones are acknowledged only once Redis "
                      "has them, invalid ones are listed in `rejected` with the reason. Idempotent per "
                      "shopper and event_id: a retried batch is reported as duplicates.",
          body=_body, response=EventsAccepted, schemas=(Event,), errors=(400, 413, 422, 429, 503))
async def post_events(request: web.Request, p: dict) -> web.Response:
    settings, metrics = request.app[SETTINGS], request.app[METRICS]
    try:
        payload = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    raw = _events_of(payload)
    if not raw:
        raise BadRequest("no events in the body")
    limit = settings.server.max_batch_events
    if len(raw) > limit:
        raise PayloadTooLarge(f"at most {limit} events per request, got {len(raw)}")
    wait_s = request.app[LIMITER].take(request.get(KEY_ID, ANONYMOUS), len(raw))
    if wait_s:
        metrics.event_outcome("rate_limited", len(raw))
        # Nothing stored: the client retries the whole batch later (idempotent by event_id).
        raise TooManyRequests(f"over this key's event rate (security.events_per_s): retry in {wait_s:.2f} s",
                              headers={"Retry-After": str(max(1, math.ceil(wait_s)))})
    valid: list[Event] = []
    rejected: list[Rejected] = []
    now_ms = int(time.time() * 1000)
    for i, obj in enumerate(raw):
        try:
            # Not strict: JSON Schema's `integer` includes 2.0, which the document then allows.
            event = msgspec.convert(obj, Event, strict=False)
            if problem := ts_problem(event.ts, now_ms):
                raise msgspec.ValidationError(problem)
            valid.append(event)
        except msgspec.ValidationError as exc:
            event_id = obj.get("event_id") if isinstance(obj, dict) else None
            rejected.append(Rejected(index=i, error=str(exc)[:500], event_id=(
                event_id[:MAX_ID_LEN] if isinstance(event_id, str) else None)))
    if rejected:
        metrics.event_outcome("rejected", len(rejected))
    if not valid:
        raise Unprocessable("no valid event in the request",
                            extra={"rejected": [msgspec.to_builtins(r) for r in rejected]})
    try:
        result = await request.app[SESSIONS].ingest(valid, now_ms=now_ms, known=known_ids(request.app),
                                                    prices=prices(request.app))
        # Goal events converting experiment units: also before the acknowledgement, so a
        # failure here is retried by the client like any other (and counted once). A shopper
        # who refused personalization has no assignment, and no record of their goal events.
        refused = result.not_stored
        await request.app[EXPERIMENTS].attribute([e for i, e in enumerate(valid) if i not in refused])
        # Trigger rules the events completed fire now, also before the acknowledgement: a retry
        # reports the same signals, and an occasion fires once.
        await request.app[TRIGGERS].on_ingest(valid, result, now_ms)
    except StoreUnavailable as exc:
        metrics.event_outcome("unavailable", len(valid))
        # The reason (which Redis, which script) is for the operator's log, not the storefront.
        cause = "redis_timeout" if isinstance(exc.__cause__, TimeoutError) else "redis_unavailable"
        metrics.redis_error("ingest", cause == "redis_timeout")
        _log_once(logging.WARNING, f"events not acknowledged ({cause}): {exc}")
        # Not acknowledged: the client keeps the events and retries (idempotent by event_id).
        raise Unavailable(f"event store unavailable ({cause}), not acknowledged: retry later",
                          headers={"Retry-After": "1"}) from None
    metrics.event_outcome("accepted", result.accepted)
    if result.duplicates:
        metrics.event_outcome("duplicate", len(result.duplicates))
    for reason, n in (("unknown_item", result.unknown_items), ("unknown_category", result.unknown_categories),
                      ("over_budget", result.over_budget)):
        if n:
            metrics.not_live(reason, n)
    return json_response(EventsAccepted(accepted=result.accepted, duplicates=result.duplicates,
                                        rejected=rejected, request_id=request[REQUEST_ID]))
