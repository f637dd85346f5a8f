"""Model info and reload, health and readiness, metrics, the OpenAPI document."""

from __future__ import annotations

import asyncio

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from models import artifact
from server.appkeys import METRICS, MODELS, OPENAPI, REDIS, TRENDING
from server.recommend.params import current
from server.schemas import Health, ModelInfo
from server.web.api import Api, json_response
from server.web.errors import BadRequest, NotFound

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
    await holder.reload()
    request.app[METRICS].model_reloads.set(holder.reloads)
    return json_response(_model_info(request))


class VersionInfo(msgspec.Struct):
    version: str
    created: str
    current: bool
    items: int
    users: int
    recall_at_20: float | None  # the published evaluation, when there is one
    lift: float | None  # against popularity


@api.get("/v1/admin/models", summary="The published model versions, newest first", admin=True,
         responses={"200": {"description": "Versions", "content": {"application/json": {"schema": {
             "type": "array", "items": {"$ref": "#/components/schemas/VersionInfo"}}}}}},
         schemas=(VersionInfo,))
async def get_models(request: web.Request, p: dict) -> web.Response:
    store = request.app[MODELS].store
    out = []
    for v in await asyncio.to_thread(artifact.list_versions, store):
        m = v["manifest"]
        sg = m.get("metrics", {}).get("strong_generalization")
        counts = m.get("counts", {})
        out.append(VersionInfo(v["version"], m.get("created", ""), v["current"], counts.get("items", 0),
                               counts.get("users", 0),
                               sg["model"]["recall@20"]["mean"] if sg else None,
                               sg.get("lift_recall@20") if sg else None))
    return json_response(out)


class UseVersion(msgspec.Struct):
    version: str


@api.post("/v1/admin/models/current",
          summary="Serve another published version (a rollback): checked completely first, then CURRENT "
                  "switched; every worker follows",
          body={"required": True, "content": {"application/json": {"schema": {
              "$ref": "#/components/schemas/UseVersion"}}}},
          response=ModelInfo, schemas=(UseVersion,), errors=(400, 404, 503), admin=True)
async def post_current_model(request: web.Request, p: dict) -> web.Response:
    try:
        version = msgspec.json.decode(await request.read(), type=UseVersion).version
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadRequest(f"the body must be {{\"version\": \"…\"}}: {exc}") from None
    holder = request.app[MODELS]
    published = await asyncio.to_thread(artifact.list_versions, holder.store)
    if version not in {v["version"] for v in published}:
        raise NotFound(f"no published version {version[:80]!r}")
    try:
        await asyncio.to_thread(artifact.use_version, holder.store, version)
    except artifact.ArtifactError as exc:
        raise BadRequest(f"version {version} refused: {exc}") from None
    await holder.reload()
    request.app[METRICS].model_reloads.set(holder.reloads)
    return json_response(_model_info(request))


@api.get("/healthz", summary="Liveness: the process answers", response=Health)
async def healthz(request: web.Request, p: dict) -> web.Response:
    model = request.app[MODELS].model
    return json_response(Health(status="ok", model_version=model.version if model else None))


@api.get("/readyz", summary="Readiness: a model is loaded and Redis answers (503 with the reason if not)",
         response=Health, responses={"503": {"description": "Not ready: `detail` says why", "content": {
             "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}})
async def readyz(request: web.Request, p: dict) -> web.Response:
    holder = request.app[MODELS]
    redis_ok = await request.app[REDIS].ping()
    model = holder.model
    ready = model is not None and redis_ok
    detail = None
    if not ready:
        detail = holder.last_error if model is None else "redis unreachable"
    elif not request.app[TRENDING].healthy:
        detail = f"trending lists stale: {request.app[TRENDING].last_error}"
    body = Health(status="ready" if ready else "not_ready", model_version=model.version if model else None,
                  redis=redis_ok, detail=detail)
    return json_response(body, status=200 if ready else 503)


@api.get("/metrics", summary="Prometheus metrics", responses={"200": {
    "description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(request: web.Request, p: dict) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@api.get("/openapi.json", summary="This document", responses={"200": {"description": "OpenAPI 3.1 document"}})
async def openapi(request: web.Request, p: dict) -> web.Response:
    return json_response(request.app[OPENAPI])
