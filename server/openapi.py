"""The OpenAPI 3.1 document: operations listed once here, schemas generated from the msgspec
types the server itself encodes and decodes (models/events.py, server/schemas.py). A test
checks that this list and the app's routes are the same set."""

from __future__ import annotations

from functools import cache

import msgspec

from models.events import Event, EventBatch
from server.schemas import ErrorBody, EventsAccepted, Health, ModelInfo, Recommendations

REF = "#/components/schemas/{name}"


def _param(name: str, description: str, *, schema: dict | None = None, required: bool = False,
           where: str = "query") -> dict:
    return {"name": name, "in": where, "required": required, "description": description,
            "schema": schema or {"type": "string", "maxLength": 128}}


K = _param("k", "How many items (default 10, at most max_k).",
           schema={"type": "integer", "minimum": 1, "maximum": 100})
ITEMS = _param("item_id", "Context item(s): repeat the parameter or separate with commas.",
               schema={"type": "array", "items": {"type": "string"}})


def _json(name: str) -> dict:
    return {"content": {"application/json": {"schema": {"$ref": REF.format(name=name)}}}}


def _errors(*statuses: int) -> dict:
    text = {400: "Bad request", 401: "Unauthorized", 404: "Unknown item or category",
            413: "Too many events or body too large", 422: "No valid event",
            503: "Not ready / Redis unavailable (events are not acknowledged; retry)"}
    return {str(s): {"description": text[s], **_json("ErrorBody")} for s in statuses}


# (method, path) -> operation. The single list of what the server exposes.
OPERATIONS: dict[tuple[str, str], dict] = {
    ("post", "/v1/events"): {
        "summary": "Record storefront events (one, a list, or {\"events\": [...]})",
        "description": "Each event is validated; valid ones are acknowledged only once Redis has "
                       "them. Idempotent by event_id: a retried batch is reported as duplicates.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
            {"$ref": REF.format(name="Event")}, {"$ref": REF.format(name="EventBatch")},
            {"type": "array", "items": {"$ref": REF.format(name="Event")}}]}}}},
        "responses": {"200": {"description": "Accepted (see rejected for invalid events)",
                              **_json("EventsAccepted")}, **_errors(400, 413, 422, 503)},
    },
    ("get", "/v1/recommendations"): {
        "summary": "Recommendations for a placement, shopper and context",
        "parameters": [
            _param("placement", "home | product | cart | category | search | checkout | account | email"),
            _param("user_id", "Known shopper."), _param("session_id", "Live session (anonymous too)."),
            ITEMS, _param("category", "Category context (required for the category placement)."), K,
            _param("exclude", "Item ids never to return (repeat or comma-separate).",
                   schema={"type": "array", "items": {"type": "string"}})],
        "responses": {"200": {"description": "Ranked items, the rung they came from, the model version",
                              **_json("Recommendations")}, **_errors(400, 404, 503)},
    },
    ("get", "/v1/items/{item_id}/similar"): {
        "summary": "Items similar to one item",
        "parameters": [_param("item_id", "The item.", required=True, where="path"), K],
        "responses": {"200": {"description": "Similar items", **_json("Recommendations")},
                      **_errors(400, 404, 503)},
    },
    ("get", "/v1/items/similar"): {
        "summary": "Items similar to several items (e.g. a whole cart)",
        "parameters": [ITEMS, K],
        "responses": {"200": {"description": "Similar items", **_json("Recommendations")},
                      **_errors(400, 404, 503)},
    },
    ("get", "/v1/trending"): {
        "summary": "Trending items from live, decayed counters, topped up with popular items to k "
                   "(all popular when Redis is down)",
        "parameters": [_param("category", "Restrict to one category."), K],
        "responses": {"200": {"description": "Trending items", **_json("Recommendations")},
                      **_errors(400, 404, 503)},
    },
    ("get", "/v1/models/current"): {
        "summary": "The model version being served, its parameters and evaluation",
        "responses": {"200": {"description": "Model info", **_json("ModelInfo")}, **_errors(503)},
    },
    ("post", "/v1/admin/reload"): {
        "summary": "Load the version CURRENT points to now (also polled automatically)",
        "responses": {"200": {"description": "Model info", **_json("ModelInfo")}, **_errors(401, 503)},
    },
    ("get", "/healthz"): {"summary": "Liveness: the process answers",
                          "responses": {"200": {"description": "Alive", **_json("Health")}}},
    ("get", "/readyz"): {"summary": "Readiness: a model is loaded and Redis answers",
                         "responses": {"200": {"description": "Ready", **_json("Health")},
                                       "503": {"description": "Not ready", **_json("Health")}}},
    ("get", "/metrics"): {"summary": "Prometheus metrics",
                          "responses": {"200": {"description": "Prometheus text format",
                                                "content": {"text/plain": {"schema": {"type": "string"}}}}}},
    ("get", "/openapi.json"): {"summary": "This document",
                               "responses": {"200": {"description": "OpenAPI 3.1 document"}}},
}


@cache
def openapi_document() -> dict:
    _, components = msgspec.json.schema_components(
        [Event, EventBatch, EventsAccepted, Recommendations, ModelInfo, Health, ErrorBody],
        ref_template=REF)
    paths: dict[str, dict] = {}
    for (method, path), op in OPERATIONS.items():
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Vitrine", "version": "1", "description":
                 "Real-time personalization and recommendations for online stores."},
        "paths": paths,
        "components": {"schemas": components},
    }
