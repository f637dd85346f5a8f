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
