"""Prometheus metrics, served at /metrics.

One scrape sees the whole server: with several workers (server/ops/workers.py) each writes
prometheus_client's multiprocess files in the run's directory and `/metrics`, whichever worker
answers, adds them up (counters and histograms of a restarted worker included, so totals never
go back). With one process, its own registry.

| metric | labels | |
| --- | --- | --- |
| `vitrine_requests_total` | route, status | HTTP requests |
| `vitrine_request_seconds` | route | latency histogram, per route |
| `vitrine_recommendation_seconds` | rung | latency histogram of recommendation answers, per rung |
| `vitrine_recommendation_rung_total` | rung | answers per rung |
| `vitrine_degraded_total` | reason | recommendations served without live signals |
| `vitrine_redis_errors_total` | operation, kind | Redis calls that failed (`kind`: timeout, error) |
| `vitrine_events_total` | outcome | accepted, duplicate, rejected, unavailable, rate_limited |
| `vitrine_model_info` | version (pid) | 1 for the version each worker serves |
| `vitrine_model_created_timestamp_seconds` | | creation of the oldest version served: age = time() − it |
| `vitrine_model_loaded_timestamp_seconds` | | when the oldest served version was loaded |
| `vitrine_model_reloads` | | versions loaded (most by a worker) |
| `vitrine_experiment_exposures_total` | experiment, variant | (for the experiments routes: `exposure()`) |
| `vitrine_events_not_live_total` | reason | accepted events kept out of live state (unknown id, budget) |
| `vitrine_model_reload_errors_total` | | model versions refused |
| `vitrine_embedded_redis_restarts_total` | | restarts of the embedded Redis |
| `vitrine_redis_durability_risk` | | 1 without appendonly, 0 with, -1 unknown |
| `vitrine_stream_unexported_events` (`_fill_ratio`, `_oldest_unexported_seconds`, …) | | export backlog |
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        """`multiprocess_dir`: the run's directory when this is one of several workers (the
        PROMETHEUS_MULTIPROC_DIR the workers were started with)."""
        self.multiprocess_dir = multiprocess_dir
        r = self.registry = CollectorRegistry()
        self.requests = Counter("vitrine_requests_total", "HTTP requests", ["route", "status"], registry=r)
        self.latency = Histogram("vitrine_request_seconds", "Server-side request latency", ["route"],
                                 registry=r, buckets=BUCKETS)
        self.rung_latency = Histogram("vitrine_recommendation_seconds",
                                      "Server-side latency of recommendation answers, per rung", ["rung"],
                                      registry=r, buckets=BUCKETS)
        self.rungs = Counter("vitrine_recommendation_rung_total", "Answers by fallback rung", ["rung"],
                             registry=r)
        self.degraded = Counter("vitrine_degraded_total", "Requests served without live signals",
                                ["reason"], registry=r)
        self.redis_errors = Counter("vitrine_redis_errors_total", "Redis calls that failed",
                                    ["operation", "kind"], registry=r)
        self.events = Counter("vitrine_events_total", "Events by outcome", ["outcome"], registry=r)
        self.model_info = Gauge("vitrine_model_info", "The model version served (1)", ["version"],
                                registry=r, multiprocess_mode="liveall")
        self.model_created = Gauge("vitrine_model_created_timestamp_seconds",
                                   "Creation time of the oldest model version served", registry=r,
                                   multiprocess_mode="livemin")
        self.model_loaded = Gauge("vitrine_model_loaded_timestamp_seconds",
                                  "Load time of the oldest model version served", registry=r,
                                  multiprocess_mode="livemin")
        self.model_reloads = Gauge("vitrine_model_reloads", "Model versions loaded", registry=r,
                                   multiprocess_mode="livemax")
        self.exposures = Counter("vitrine_experiment_exposures_total", "Experiment exposures",
                                 ["experiment", "variant"], registry=r)
        # Hardening (#19): what the store refused to keep, and what an operator must act on.
        # Every worker reads the same Redis: the gauges' largest live value is the server's.
        self.events_not_live = Counter(
            "vitrine_events_not_live_total", "Accepted events left out of live state and trending",
            ["reason"], registry=r)  # unknown_item, unknown_category, over_budget
        self.model_reload_errors = Counter("vitrine_model_reload_errors_total",
                                           "Model versions refused", registry=r)
        self.embedded_redis_restarts = Counter(
            "vitrine_embedded_redis_restarts_total", "Restarts of the embedded Redis after it died",
            registry=r)
        self.redis_durability_risk = Gauge(
            "vitrine_redis_durability_risk", "1: acknowledged events may be lost if Redis crashes "
            "(no appendonly); 0: appendonly; -1: unknown (CONFIG unavailable)", registry=r,
            multiprocess_mode="livemax")
        self.stream_unexported = Gauge("vitrine_stream_unexported_events",
                                       "Events in the streams not exported yet", registry=r,
                                       multiprocess_mode="livemax")
        self.stream_fill = Gauge("vitrine_stream_fill_ratio", "Fullest stream shard's length over "
                                 "redis.stream_maxlen", registry=r, multiprocess_mode="livemax")
        self.stream_oldest_s = Gauge("vitrine_stream_oldest_unexported_seconds",
                                     "Age of the oldest event not exported yet", registry=r,
                                     multiprocess_mode="livemax")
        self.stream_dropped = Gauge("vitrine_stream_dropped_events",
                                    "Events the stream cap dropped before they were exported",
                                    registry=r, multiprocess_mode="livemax")
        self.triggers = Counter("vitrine_triggers_total", "Customer triggers by rule and outcome (fired, "
                                "duplicate, rate_limited, delivered, undelivered)", ["rule", "outcome"],
                                registry=r)
        self._request_children: dict[tuple[str, int], tuple] = {}
        self._rung_children: dict[str, tuple] = {}
        self._event_children: dict[str, Counter] = {}
        self._version: str | None = None

    def rung(self, name: str) -> None:
        self._rung(name)[0].inc()

    def _rung(self, name: str) -> tuple:
        child = self._rung_children.get(name)
        if child is None:
            child = self._rung_children[name] = (self.rungs.labels(name), self.rung_latency.labels(name))
        return child

    def event_outcome(self, outcome: str, n: int) -> None:
        child = self._event_children.get(outcome)
        if child is None:
            child = self._event_children[outcome] = self.events.labels(outcome)
        child.inc(n)

    def redis_error(self, operation: str, timeout: bool) -> None:
        self.redis_errors.labels(operation, "timeout" if timeout else "error").inc()

    def exposure(self, experiment: str, variant: str) -> None:
        self.exposures.labels(experiment, variant).inc()

    def not_live(self, reason: str, n: int) -> None:
        self.events_not_live.labels(reason).inc(n)

    def observe_request(self, route: str, status: int, seconds: float, rung: str | None = None) -> None:
        """Count and time one request. The labelled children are looked up once per
        (route, status): `labels()` costs a few µs, on every request."""
        children = self._request_children.get((route, status))
        if children is None:
            children = (self.requests.labels(route, str(status)), self.latency.labels(route))
            self._request_children[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)
        if rung is not None:
            self._rung(rung)[1].observe(seconds)

    def model_served(self, version: str, created_ts: float, loaded_ts: float, reloads: int) -> None:
        if self._version is not None and self._version != version:
            self.model_info.labels(self._version).set(0)
        self._version = version
        self.model_info.labels(version).set(1)
        self.model_created.set(created_ts)
        self.model_loaded.set(loaded_ts)
        self.model_reloads.set(reloads)

    def exposition(self) -> bytes:
        """The Prometheus text of the whole server."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        return generate_latest(registry)
