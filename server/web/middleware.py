"""Cross-cutting work on every request: its id (also in every log line written meanwhile), CORS,
every error as a JSON body `{"error": code, "detail": text, "request_id": id, …}` with the
right status, its metrics and its access-log line.

Measured cost on the hot path: see benchmarks/results/middleware.md.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from server.appkeys import KEY_ID, REQUEST_ID, RUNG, STARTED
from server.ops.logs import ACCESS, request_id_var
from server.ops.metrics import Metrics
from server.settings import Settings
from server.web.api import json_response
from server.web.errors import HTTP_CODES, ApiError, Forbidden
from server.web.security import Cors

log = logging.getLogger("vitrine.server")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
# Request ids: unique per process start (random prefix) and per request (counter); cheaper
# than a random id per request and as unique.
_ID_PREFIX = os.urandom(5).hex()
_ID_COUNTER = itertools.count(1)


def _client_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-ID", "")
    # Echoed in a header: printable ASCII only, bounded.
    return given[:64] if given.isascii() and given.isprintable() else ""


def _error(request: web.Request, exc: Exception) -> web.Response:
    if isinstance(exc, ApiError):
        body = {"error": exc.code, "detail": exc.detail, "request_id": request[REQUEST_ID], **exc.extra}
        return json_response(body, status=exc.status, headers=exc.headers)
    if isinstance(exc, web.HTTPException):
        # Keep aiohttp's headers (a 405's `Allow`), replace its text body with ours.
        headers = {k: v for k, v in exc.headers.items()
                   if k.lower() not in ("content-type", "content-length")}
        return json_response({"error": HTTP_CODES.get(exc.status, "http_error"), "detail": exc.reason,
                              "request_id": request[REQUEST_ID]}, status=exc.status, headers=headers)
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return json_response({"error": "internal", "detail": "internal server error",
                          "request_id": request[REQUEST_ID]}, status=500)


def request_context(settings: Settings, metrics: Metrics) -> Middleware:
    cors = Cors(settings.security.cors_origins)
    sample = settings.server.access_log_sample

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[STARTED] = time.perf_counter()
        request[REQUEST_ID] = request_id = _client_id(request) or f"{_ID_PREFIX}{next(_ID_COUNTER):x}"
        request_id_var.set(request_id)  # each request runs in its own task: its own context
        route = request.match_info.route.resource
        route_name = route.canonical if route is not None else "unmatched"
        origin = request.headers.get("Origin") if cors.enabled else None
        try:
            if origin is not None and request.method == "OPTIONS" and \
                    "Access-Control-Request-Method" in request.headers:
                response = cors.preflight(request, origin)
                if response is None:
                    if not cors.allows(origin):
                        raise Forbidden(f"origin {origin[:100]!r} is not allowed (security.cors_origins)")
                    raise request.match_info.http_exception
            else:
                response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _error(request, exc)
        except Exception as exc:  # ApiError, and anything unexpected: a JSON body, never a traceback
            response = _error(request, exc)
        response.headers["X-Request-ID"] = request_id
        if origin is not None:
            cors.decorate(response, origin)
        seconds = time.perf_counter() - request[STARTED]
        rung = request.get(RUNG)
        metrics.observe_request(route_name, response.status, seconds, rung)
        if sample and ACCESS.isEnabledFor(logging.INFO) and (
                sample >= 1 or response.status >= 500 or random.random() < sample):
            ACCESS.info("%s %s %d", request.method, route_name, response.status, extra={
                "method": request.method, "route": route_name, "path": request.path[:200],
                "status": response.status, "ms": round(seconds * 1000, 3), "rung": rung,
                "key": request.get(KEY_ID)})
        return response

    return middleware
