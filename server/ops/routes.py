"""Model info and reload, health and readiness, metrics, the OpenAPI document."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.appkeys import HEALTH, METRICS, MODELS, OPENAPI, REDIS, TRENDING
from server.recommend.routes import current
from server.schemas import Health, ModelInfo
from server.web.api import Api, json_response
from server.web.openapi import as_served

api = Api("operations")


def _model_info(request: web.Request) -> ModelInfo:
    model = current(request).model
    m = model.art.manifest
    return ModelInfo(version=model.version, created=m["created"], loaded_at=model.loaded_at,
                     counts=m["counts"], params=m["params"], metrics=m.get("metrics", {}),
                     index=m.get("index", {}), reload_error=request.app[MODELS].last_error)


@api.get("/v1/models/current", summary="The model version being served, its parameters and evaluation",
         response=ModelInfo, errors=(503,))
async def get_current_model(request: web.Request, p: dict) -> web.Response:
    return json_response(_model_info(request))


@api.post("/v1/admin/reload", summary="Load the version CURRENT points to now (also polled automatically)",
          response=ModelInfo, errors=(503,), admin=True)
async def post_reload(request: web.Request, p: dict) -> web.Response:
    holder = request.app[MODELS]
    await holder.reload(force=True)  # an operator asking: try a refused version again
    request.app[METRICS].model_reloads.set(holder.reloads)
    return json_response(_model_info(request))


@api.get("/healthz", summary="Liveness: the process answers", response=Health)
async def healthz(request: web.Request, p: dict) -> web.Response:
    model = request.app[MODELS].model
    return json_response(Health(status="ok", model_version=model.version if model else None))


@api.get("/readyz", summary="Readiness: a model is loaded and Redis answers (503 with the reason if not); "
                             "`detail` also names what an operator must act on while serving (Redis "
                             "persistence, the export's backlog, a refused model version)",
         response=Health, responses={"503": {"description": "Not ready: `detail` says why", "content": {
             "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}})
async def readyz(request: web.Request, p: dict) -> web.Response:
    holder = request.app[MODELS]
    redis_ok = await request.app[REDIS].ping()
    model = holder.model
    ready = model is not None and redis_ok
    health, trending = request.app[HEALTH], request.app[TRENDING]
    # Why not ready first, then what an operator must act on while serving.
    problems = [] if model is not None else [holder.last_error or "no model loaded"]
    if not redis_ok:
        problems.append(health.redis_down or "redis unreachable")
    problems += health.problems()
    if model is not None and holder.last_error:
        problems.append(f"serving {model.version}; {holder.last_error}")
    if redis_ok and not trending.healthy:
        problems.append(f"trending lists stale: {trending.last_error}")
    body = Health(status="ready" if ready else "not_ready", model_version=model.version if model else None,
                  redis=redis_ok, detail="; ".join(problems) or None)
    return json_response(body, status=200 if ready else 503)


@api.get("/metrics", summary="Prometheus metrics", responses={"200": {
    "description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(request: web.Request, p: dict) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@api.get("/openapi.json", summary="This document", responses={"200": {"description": "OpenAPI 3.1 document"}})
async def openapi(request: web.Request, p: dict) -> web.Response:
    return json_response(as_served(request.app[OPENAPI], int(time.time() * 1000)))
