"""The aiohttp application factory: `create_app(settings)` builds what the CLI serves and the
tests exercise. It owns the resources (the Redis connections, the stores, the served model and
its watcher, the trending snapshot), each opened and closed in a cleanup context, and mounts
each feature's declared routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import faiss
from aiohttp import web
from redis.exceptions import RedisError
from threadpoolctl import threadpool_limits

from server.appkeys import EXPERIMENTS, METRICS, MODELS, OPENAPI, REDIS, SESSIONS, SETTINGS, TRENDING
from server.catalog.routes import api as catalog_api
from server.catalog.routes import catalog_ctx
from server.events.routes import api as events_api
from server.experiments.routes import api as experiments_api
from server.experiments.service import Experiments
from server.experiments.snapshot import ExperimentSnapshot
from server.experiments.store import ExperimentStore
from server.merchandising.routes import api as merchandising_api
from server.merchandising.routes import rules_ctx
from server.ops.metrics import Metrics
from server.ops.models import ModelHolder
from server.ops.routes import api as ops_api
from server.pages.routes import api as pages_api
from server.recommend.params import PLACEMENTS
from server.recommend.routes import api as recommend_api
from server.recommend.trending import TrendingSnapshot
from server.settings import Settings
from server.store.connections import Connections
from server.store.embedded import redis_server
from server.store.records import StoreUnavailable
from server.store.sessions import SessionStore
from server.store.trending import TrendingStore
from server.web.middleware import request_context
from server.web.openapi import document

log = logging.getLogger("vitrine.server")
API_GROUPS = [events_api, recommend_api, catalog_api, merchandising_api, experiments_api, ops_api,
              pages_api]


async def _stop(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    with redis_server(settings.redis.url, settings.data.dir) as url:
        app[REDIS] = conn = Connections.for_settings(url, settings.redis)
        app[SESSIONS] = SessionStore(conn.wire, settings.redis)
        app[TRENDING] = trending = TrendingSnapshot(TrendingStore(conn.wire, settings.redis),
                                                    settings.recommend.trending_refresh_s)
        with contextlib.suppress(StoreUnavailable):  # the loop below retries and says so
            await trending.refresh()
        snapshot = ExperimentSnapshot(ExperimentStore(conn.wire, conn.client, settings.redis), PLACEMENTS)
        app[EXPERIMENTS] = experiments = Experiments(snapshot.store, app[SESSIONS], snapshot,
                                                     lambda: app[MODELS].current)
        with contextlib.suppress(RedisError, OSError):  # Redis down at start: the loop retries
            await snapshot.refresh()
            if settings.experiments.file is not None:
                await snapshot.load_file(settings.experiments.file)
        tasks = [asyncio.create_task(trending.run()), asyncio.create_task(snapshot.run())]
        if settings.experiments.bandits:
            tasks.append(asyncio.create_task(experiments.run_bandits()))
        try:
            yield
        finally:
            for task in tasks:
                await _stop(task)
            await conn.aclose()


async def _model_ctx(app: web.Application) -> AsyncIterator[None]:
    holder = app[MODELS]
    await holder.reload()
    if holder.model is None:
        log.warning("no model yet (%s); serving 503 until one is published", holder.last_error)
    app[METRICS].model_reloads.set(holder.reloads)
    watcher = asyncio.create_task(holder.watch(app[SETTINGS].model.reload_interval_s))
    yield
    await _stop(watcher)


def create_app(settings: Settings) -> web.Application:
    # One BLAS/OpenMP thread: per-request numpy/faiss work is tiny, and threads would only
    # contend with the event loop (and with the other workers).
    threadpool_limits(1)
    faiss.omp_set_num_threads(1)
    app = web.Application(middlewares=[request_context], client_max_size=settings.server.max_body_bytes)
    app[SETTINGS] = settings
    app[MODELS] = ModelHolder(settings.model.store)
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(catalog_ctx)  # before the model: its view of the items is built on load
    app.cleanup_ctx.append(rules_ctx)
    app.cleanup_ctx.append(_model_ctx)
    for api in API_GROUPS:
        api.mount(app, settings)
    app[OPENAPI] = document(API_GROUPS, settings)
    return app
