"""POST /v1/events: validated at the door, acknowledged only once Redis has them."""

from __future__ import annotations

import time

import msgspec
import orjson
from aiohttp import web

from models.events import Event
from server.appkeys import METRICS, SETTINGS, STORE
from server.errors import BadRequest, PayloadTooLarge, Unavailable, Unprocessable
from server.http import json_response, request_id
from server.schemas import EventsAccepted, Rejected
from server.session_store import StoreUnavailable

routes = web.RouteTableDef()


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


@routes.post("/v1/events")
async def post_events(request: web.Request) -> web.Response:
    settings, metrics = request.app[SETTINGS], request.app[METRICS]
    try:
        payload = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    raw = _events_of(payload)
    if not raw:
        raise BadRequest("no events in the body")
    if len(raw) > settings.max_batch_events:
        raise PayloadTooLarge(f"at most {settings.max_batch_events} events per request, got {len(raw)}")
    valid: list[Event] = []
    rejected: list[Rejected] = []
    for i, obj in enumerate(raw):
        try:
            valid.append(msgspec.convert(obj, Event))
        except msgspec.ValidationError as exc:
            event_id = obj.get("event_id") if isinstance(obj, dict) else None
            rejected.append(Rejected(index=i, error=str(exc),
                                     event_id=event_id if isinstance(event_id, str) else None))
    if rejected:
        metrics.event_outcome("rejected", len(rejected))
    if not valid:
        raise Unprocessable("no valid event in the request",
                            extra={"rejected": [msgspec.to_builtins(r) for r in rejected]})
    try:
        result = await request.app[STORE].ingest(valid, now_ms=int(time.time() * 1000))
    except StoreUnavailable as exc:
        metrics.event_outcome("unavailable", len(valid))
        # Not acknowledged: the client keeps the events and retries (idempotent by event_id).
        raise Unavailable(f"event store unavailable, retry later: {exc}",
                          headers={"Retry-After": "1"}) from None
    metrics.event_outcome("accepted", result.accepted)
    if result.duplicates:
        metrics.event_outcome("duplicate", len(result.duplicates))
    return json_response(EventsAccepted(accepted=result.accepted, duplicates=result.duplicates,
                                        rejected=rejected, request_id=request_id(request)))
