"""The aiohttp application factory: `create_app(settings)` builds what the CLI serves and the
tests exercise. It owns the resources (the Redis connections, the stores, the served model and
its watcher, the trending snapshot), each opened and closed in a cleanup context, and mounts
each feature's declared routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import faiss
from aiohttp import web
from redis.exceptions import RedisError
from threadpoolctl import threadpool_limits

from server.appkeys import (
    CUSTOMERS,
    EXPERIMENTS,
    HEALTH,
    LIMITER,
    METRICS,
    MODELS,
    OPENAPI,
    REDIS,
    SESSIONS,
    SETTINGS,
    TRENDING,
    TRIGGERS,
)
from server.catalog.routes import api as catalog_api
from server.catalog.routes import catalog_ctx
from server.customers.firing import TriggerService
from server.customers.routes import api as customers_api
from server.customers.rules import SegmentRulesSnapshot
from server.customers.service import Customers
from server.customers.store import CustomerStore
from server.events.routes import api as events_api
from server.experiments.routes import api as experiments_api
from server.experiments.service import Experiments
from server.experiments.snapshot import ExperimentSnapshot
from server.experiments.store import ExperimentStore
from server.merchandising.routes import api as merchandising_api
from server.merchandising.routes import rules_ctx
from server.ops.health import StoreHealth
from server.ops.metrics import Metrics
from server.ops.models import ModelHolder, Served
from server.ops.routes import api as ops_api
from server.pages.routes import api as pages_api
from server.recommend.params import PLACEMENTS
from server.recommend.routes import api as recommend_api
from server.recommend.trending import TrendingSnapshot
from server.settings import Settings
from server.store.connections import Connections
from server.store.embedded import supervised_redis
from server.store.records import StoreUnavailable
from server.store.sessions import SessionStore
from server.store.trending import TrendingStore
from server.web.middleware import request_context
from server.web.openapi import document
from server.web.ratelimit import EventLimiter
from server.web.security import insecure_warnings

log = logging.getLogger("vitrine.server")
API_GROUPS = [events_api, recommend_api, catalog_api, merchandising_api, experiments_api, customers_api,
              ops_api, pages_api]


async def _stop(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, metrics = app[SETTINGS], app[METRICS]
    with supervised_redis(settings.redis.url, settings.data.dir,
                          on_restart=metrics.embedded_redis_restarts.inc) as (url, supervisor):
        app[REDIS] = conn = Connections.for_settings(url, settings.redis)
        app[HEALTH] = health = StoreHealth(conn.client, settings.redis, metrics, supervisor=supervisor)
        app[SESSIONS] = SessionStore(conn.wire, settings.redis, settings.customers, settings.triggers)
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
        customer_store = CustomerStore(conn.wire, conn.client, settings.redis, settings.customers)
        rules = SegmentRulesSnapshot(conn.client, customer_store.keys)
        app[CUSTOMERS] = customers = Customers(customer_store, rules, settings, lambda: app[MODELS].current)
        with contextlib.suppress(RedisError, OSError):  # Redis down at start: the loop retries
            await rules.refresh()
            if settings.customers.segment_rules_file is not None:
                await rules.load_file(settings.customers.segment_rules_file)
        app[TRIGGERS] = triggers = TriggerService(
            customers, app[SESSIONS], trending, settings, lambda: app[MODELS].current,
            on_outcome=lambda rule, outcome: metrics.triggers.labels(rule, outcome).inc())
        await health.check()  # warns at start about a Redis that would lose acknowledged events
        tasks = [asyncio.create_task(trending.run()), asyncio.create_task(snapshot.run()),
                 asyncio.create_task(health.run()), asyncio.create_task(customers.run())]
        if settings.triggers.enabled:
            tasks.append(asyncio.create_task(triggers.run()))  # timers and webhooks, one worker at a time
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
    watcher = asyncio.create_task(holder.watch(app[SETTINGS].model.reload_interval_s))
    yield
    await _stop(watcher)


def _model_metrics(metrics: Metrics):
    def swapped(served: Served, reloads: int) -> None:
        model = served.model
        created = datetime.fromisoformat(model.art.manifest["created"]).timestamp()
        metrics.model_served(model.version, created, model.loaded_at, reloads)
    return swapped


async def _warn_if_open(app: web.Application) -> None:
    for warning in insecure_warnings(app[SETTINGS].security):
        log.warning("%s", warning)


def create_app(settings: Settings, *, metrics_dir: Path | None = None) -> web.Application:
    """The application; `metrics_dir`: the run's multiprocess metrics directory when this is one
    of several workers (server/ops/workers.py)."""
    # One BLAS/OpenMP thread: per-request numpy/faiss work is tiny, and threads would only
    # contend with the event loop (and with the other workers).
    threadpool_limits(1)
    faiss.omp_set_num_threads(1)
    metrics = Metrics(metrics_dir)
    # A query string may be as long as a body: 100 context ids and 500 exclusions of 128
    # characters are schema-valid, and aiohttp's default 8 KB request line would refuse them.
    limit = settings.server.max_body_bytes
    app = web.Application(middlewares=[request_context(settings, metrics)], client_max_size=limit,
                          handler_args={"max_line_size": limit})
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[MODELS] = ModelHolder(settings.model.store, on_refused=metrics.model_reload_errors.inc,
                              on_swap=_model_metrics(metrics))
    app[LIMITER] = EventLimiter.for_settings(settings)
    app.on_startup.append(_warn_if_open)
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(catalog_ctx)  # before the model: its view of the items is built on load
    app.cleanup_ctx.append(rules_ctx)
    app.cleanup_ctx.append(_model_ctx)
    for api in API_GROUPS:
        api.mount(app, settings)
    app[OPENAPI] = document(API_GROUPS, settings)
    return app
