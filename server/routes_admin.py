"""Model info and reload, health and readiness, metrics, the OpenAPI document."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.appkeys import METRICS, MODELS, SETTINGS, STORE
from server.errors import Unauthorized
from server.http import current_model, json_response
from server.openapi import openapi_document
from server.schemas import Health, ModelInfo

routes = web.RouteTableDef()


def _model_info(request: web.Request) -> ModelInfo:
    model = current_model(request)
    m = model.art.manifest
    return ModelInfo(version=model.version, created=m["created"], loaded_at=model.loaded_at,
                     counts=m["counts"], params=m["params"], metrics=m.get("metrics", {}),
                     index=m.get("index", {}), reload_error=request.app[MODELS].last_error)


@routes.get("/v1/models/current")
async def get_current_model(request: web.Request) -> web.Response:
    return json_response(_model_info(request))


@routes.post("/v1/admin/reload")
async def post_reload(request: web.Request) -> web.Response:
    token = request.app[SETTINGS].admin_token
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("admin endpoints need `Authorization: Bearer <VITRINE_ADMIN_TOKEN>`")
    holder = request.app[MODELS]
    await holder.reload()
    request.app[METRICS].model_reloads.set(holder.reloads)
    return json_response(_model_info(request))


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response(Health(status="ok"))


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    holder = request.app[MODELS]
    redis_ok = await request.app[STORE].ping()
    model = holder.model
    ready = model is not None and redis_ok
    body = Health(status="ready" if ready else "not_ready", model_version=model.version if model else None,
                  redis=redis_ok, detail=None if ready else (holder.last_error or "redis unreachable"))
    return json_response(body, status=200 if ready else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document())
