"""Cross-cutting work on every request: its id, its timing and metrics, and every error as a
JSON body `{"error": code, "detail": text, "request_id": id, …}` with the right status."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from server.appkeys import METRICS, REQUEST_ID, STARTED
from server.web.api import json_response
from server.web.errors import HTTP_CODES, ApiError

log = logging.getLogger("vitrine.server")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Request ids: unique per process start (random prefix) and per request (counter); cheaper
# than a random id per request and as unique.
_ID_PREFIX = os.urandom(5).hex()
_ID_COUNTER = itertools.count(1)


def _client_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-ID", "")
    # Echoed in a header: printable ASCII only, bounded.
    return given[:64] if given.isascii() and given.isprintable() else ""


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[STARTED] = time.perf_counter()
    request[REQUEST_ID] = _client_id(request) or f"{_ID_PREFIX}{next(_ID_COUNTER):x}"
    route = request.match_info.route.resource
    route_name = route.canonical if route is not None else "unmatched"
    try:
        response = await handler(request)
    except ApiError as exc:
        body = {"error": exc.code, "detail": exc.detail, "request_id": request[REQUEST_ID], **exc.extra}
        response = json_response(body, status=exc.status, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # Keep aiohttp's headers (a 405's `Allow`), replace its text body with ours.
        headers = {k: v for k, v in exc.headers.items()
                   if k.lower() not in ("content-type", "content-length")}
        response = json_response({"error": HTTP_CODES.get(exc.status, "http_error"),
                                  "detail": exc.reason, "request_id": request[REQUEST_ID]},
                                 status=exc.status, headers=headers)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = json_response({"error": "internal", "detail": "internal server error",
                                  "request_id": request[REQUEST_ID]}, status=500)
    response.headers["X-Request-ID"] = request[REQUEST_ID]
    request.app[METRICS].observe_request(route_name, response.status, time.perf_counter() - request[STARTED])
    return response
