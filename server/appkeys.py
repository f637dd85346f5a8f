"""Typed application state (aiohttp AppKeys), set by the app factory and read by the routes."""

from __future__ import annotations

from aiohttp import web

from server.catalog.live import LiveCatalog
from server.customers.firing import TriggerService
from server.customers.service import Customers
from server.experiments.service import Experiments
from server.merchandising.live import LiveRules
from server.ops.health import StoreHealth
from server.ops.metrics import Metrics
from server.ops.models import ModelHolder
from server.recommend.trending import TrendingSnapshot
from server.settings import Settings
from server.store.connections import Connections
from server.store.sessions import SessionStore
from server.web.ratelimit import EventLimiter

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", Connections)
SESSIONS = web.AppKey("sessions", SessionStore)
TRENDING = web.AppKey("trending", TrendingSnapshot)
CATALOG = web.AppKey("catalog", LiveCatalog)  # the live catalog's in-process mirror (`knows()`)
RULES = web.AppKey("rules", LiveRules)
MODELS = web.AppKey("models", ModelHolder)
METRICS = web.AppKey("metrics", Metrics)
LIMITER = web.AppKey("limiter", EventLimiter)  # per-key event rate limit
EXPERIMENTS = web.AppKey("experiments", Experiments)
CUSTOMERS = web.AppKey("customers", Customers)
TRIGGERS = web.AppKey("triggers", TriggerService)
HEALTH = web.AppKey("health", StoreHealth)  # persistence, export backlog, embedded Redis
OPENAPI = web.AppKey("openapi", dict)  # the served document, built once from the routes
# Per-request state set by the middleware.
STARTED = web.RequestKey("started", float)  # time.perf_counter() at arrival: the deadline's origin
REQUEST_ID = web.RequestKey("request_id", str)
KEY_ID = web.RequestKey("key_id", str)  # the API key the request used (a fingerprint), set by auth
RUNG = web.RequestKey("rung", str)  # the rung that answered a recommendation (metrics, access log)
