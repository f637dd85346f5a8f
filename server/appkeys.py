"""Typed application state (aiohttp AppKeys), shared by the app factory and the routes."""

from __future__ import annotations

from aiohttp import web

from server.blend import BlendConfig
from server.metrics import Metrics
from server.model_holder import ModelHolder
from server.session_store import SessionStore
from server.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
MODELS = web.AppKey("models", ModelHolder)
STORE = web.AppKey("store", SessionStore)
METRICS = web.AppKey("metrics", Metrics)
TRENDING_CACHE = web.AppKey("trending_cache", dict)
BLEND = web.AppKey("blend", BlendConfig)  # settings.blend, built once
# Per-request state set by the middleware.
STARTED = web.RequestKey("started", float)  # time.perf_counter() at arrival: the deadline's origin
REQUEST_ID = web.RequestKey("request_id", str)
