"""Prometheus metrics, served at /metrics (per process: with several workers, scrape each or
let the load balancer spread scrapes; the embedded Redis has its own INFO)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("vitrine_requests_total", "HTTP requests", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram(
            "vitrine_request_seconds", "Server-side request latency", ["route"], registry=self.registry,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
        self.rungs = Counter("vitrine_recommendation_rung_total", "Answers by fallback rung",
                             ["rung"], registry=self.registry)
        self.degraded = Counter("vitrine_degraded_total", "Requests served without live signals",
                                ["reason"], registry=self.registry)
        self.events = Counter("vitrine_events_total", "Events by outcome", ["outcome"],
                              registry=self.registry)
        self.model_reloads = Gauge("vitrine_model_reloads", "Model versions loaded", registry=self.registry)
        # Hardening (#19): what the store refused to keep, and what an operator must act on.
        self.events_not_live = Counter(
            "vitrine_events_not_live_total", "Accepted events left out of live state and trending",
            ["reason"], registry=self.registry)  # unknown_item, unknown_category, over_budget
        self.model_reload_errors = Counter("vitrine_model_reload_errors_total",
                                           "Model versions refused", registry=self.registry)
        self.embedded_redis_restarts = Counter(
            "vitrine_embedded_redis_restarts_total", "Restarts of the embedded Redis after it died",
            registry=self.registry)
        self.redis_durability_risk = Gauge(
            "vitrine_redis_durability_risk", "1: acknowledged events may be lost if Redis crashes "
            "(no appendonly); 0: appendonly; -1: unknown (CONFIG unavailable)", registry=self.registry)
        self.stream_unexported = Gauge("vitrine_stream_unexported_events",
                                       "Events in the streams not exported yet", registry=self.registry)
        self.stream_fill = Gauge("vitrine_stream_fill_ratio", "Fullest stream shard's length over "
                                 "redis.stream_maxlen", registry=self.registry)
        self.stream_oldest_s = Gauge("vitrine_stream_oldest_unexported_seconds",
                                     "Age of the oldest event not exported yet", registry=self.registry)
        self.stream_dropped = Gauge("vitrine_stream_dropped_events",
                                    "Events the stream cap dropped before they were exported",
                                    registry=self.registry)
        self.triggers = Counter("vitrine_triggers_total", "Customer triggers by rule and outcome (fired, "
                                "duplicate, rate_limited, delivered, undelivered)", ["rule", "outcome"],
                                registry=self.registry)
        self._request_children: dict[tuple[str, int], tuple] = {}
        self._rung_children: dict[str, Counter] = {}
        self._event_children: dict[str, Counter] = {}

    def rung(self, name: str) -> None:
        child = self._rung_children.get(name)
        if child is None:
            child = self._rung_children[name] = self.rungs.labels(name)
        child.inc()

    def event_outcome(self, outcome: str, n: int) -> None:
        child = self._event_children.get(outcome)
        if child is None:
            child = self._event_children[outcome] = self.events.labels(outcome)
        child.inc(n)

    def not_live(self, reason: str, n: int) -> None:
        self.events_not_live.labels(reason).inc(n)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """Count and time one request. The labelled children are looked up once per
        (route, status): `labels()` costs a few µs, on every request."""
        children = self._request_children.get((route, status))
        if children is None:
            children = (self.requests.labels(route, str(status)), self.latency.labels(route))
            self._request_children[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)
