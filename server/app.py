"""The aiohttp application factory: `create_app(settings)` builds what the CLI serves and the
tests exercise. Resources (Redis, the model and its watcher) live in cleanup contexts."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import faiss
from aiohttp import web
from threadpoolctl import threadpool_limits

from server import routes_admin, routes_events, routes_recommend
from server.appkeys import BLEND, METRICS, MODELS, REQUEST_ID, SETTINGS, STARTED, STORE, TRENDING_CACHE
from server.errors import HTTP_CODES, ApiError
from server.http import json_response
from server.metrics import Metrics
from server.model_holder import ModelHolder
from server.redis_client import redis_server
from server.session_store import SessionStore
from server.settings import Settings

log = logging.getLogger("vitrine.server")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Request ids: unique per process start (random prefix) and per request (counter); cheaper
# than a random id per request and as unique.
_ID_PREFIX = os.urandom(5).hex()
_ID_COUNTER = itertools.count(1)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, timing, metrics, and every error as a JSON body with the right status."""
    request[STARTED] = time.perf_counter()
    request[REQUEST_ID] = request.headers.get("X-Request-ID", "")[:64] or f"{_ID_PREFIX}{next(_ID_COUNTER):x}"
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
        response = json_response({"error": HTTP_CODES.get(exc.status, "http_error"),
                                  "detail": exc.reason, "request_id": request[REQUEST_ID]},
                                 status=exc.status)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = json_response({"error": "internal", "detail": "internal server error",
                                  "request_id": request[REQUEST_ID]}, status=500)
    response.headers["X-Request-ID"] = request[REQUEST_ID]
    request.app[METRICS].observe_request(route_name, response.status, time.perf_counter() - request[STARTED])
    return response


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    with redis_server(settings.redis_url, settings.data_dir) as url:
        app[STORE] = store = SessionStore.connect(url, settings.store)
        try:
            yield
        finally:
            await store.aclose()


async def _model_ctx(app: web.Application) -> AsyncIterator[None]:
    holder = app[MODELS]
    await holder.reload()
    if holder.model is None:
        log.warning("no model yet (%s); serving 503 until one is published", holder.last_error)
    app[METRICS].model_reloads.set(holder.reloads)
    watcher = asyncio.create_task(holder.watch(app[SETTINGS].reload_interval_s))
    yield
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher


def create_app(settings: Settings) -> web.Application:
    # One BLAS/OpenMP thread: per-request numpy/faiss work is tiny, and threads would only
    # contend with the event loop (and with the other workers).
    threadpool_limits(1)
    faiss.omp_set_num_threads(1)
    app = web.Application(middlewares=[request_context], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[BLEND] = settings.blend
    app[MODELS] = ModelHolder(settings.model_store)
    app[METRICS] = Metrics()
    app[TRENDING_CACHE] = {}
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_model_ctx)
    app.add_routes(routes_events.routes)
    app.add_routes(routes_recommend.routes)
    app.add_routes(routes_admin.routes)
    return app
