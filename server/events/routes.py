"""POST /v1/events: validated at the door, acknowledged only once Redis has them."""

from __future__ import annotations

import time

import msgspec
import orjson
from aiohttp import web

from models.events import Event, EventBatch
from server.appkeys import EXPERIMENTS, METRICS, REQUEST_ID, SESSIONS, SETTINGS
from server.schemas import EventsAccepted, Rejected
from server.store.records import StoreUnavailable
from server.web.api import Api, json_response
from server.web.errors import BadRequest, PayloadTooLarge, Unavailable, Unprocessable

api = Api("events")
REF = "#/components/schemas/{}"


def _events_of(payload: object) -> list:
    if isinstance(payload, dict) and "events" in payload:
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
          body={"required": True, "content": {"application/json": {"schema": {"oneOf": [
              {"$ref": REF.format("Event")}, {"$ref": REF.format("EventBatch")},
              {"type": "array", "items": {"$ref": REF.format("Event")}, "minItems": 1}]}}}},
          response=EventsAccepted, schemas=(Event, EventBatch), errors=(400, 413, 422, 503))
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
    valid: list[Event] = []
    rejected: list[Rejected] = []
    for i, obj in enumerate(raw):
        try:
            valid.append(msgspec.convert(obj, Event))
        except msgspec.ValidationError as exc:
            event_id = obj.get("event_id") if isinstance(obj, dict) else None
            rejected.append(Rejected(index=i, error=str(exc),
                                     event_id=event_id[:128] if isinstance(event_id, str) else None))
    if rejected:
        metrics.event_outcome("rejected", len(rejected))
    if not valid:
        raise Unprocessable("no valid event in the request",
                            extra={"rejected": [msgspec.to_builtins(r) for r in rejected]})
    try:
        result = await request.app[SESSIONS].ingest(valid, now_ms=int(time.time() * 1000))
        # Goal events converting experiment units: also before the acknowledgement, so a
        # failure here is retried by the client like any other (and counted once).
        await request.app[EXPERIMENTS].attribute(valid)
    except StoreUnavailable as exc:
        metrics.event_outcome("unavailable", len(valid))
        # Not acknowledged: the client keeps the events and retries (idempotent by event_id).
        raise Unavailable(f"event store unavailable, retry later: {exc}",
                          headers={"Retry-After": "1"}) from None
    metrics.event_outcome("accepted", result.accepted)
    if result.duplicates:
        metrics.event_outcome("duplicate", len(result.duplicates))
    return json_response(EventsAccepted(accepted=result.accepted, duplicates=result.duplicates,
                                        rejected=rejected, request_id=request[REQUEST_ID]))
