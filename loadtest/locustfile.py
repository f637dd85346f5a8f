"""Locust scenarios of storefront traffic, built on the same traffic model as the benchmark.

    VITRINE_MODEL_STORE=models/store .venv/bin/locust -f loadtest/locustfile.py --headless \\
        -u 50 -r 10 -t 60s --host http://127.0.0.1:8080

Ids (items, users, categories) come from the model store the server serves, so requests hit
real items. Only point it at your own server (loopback or your own test hosts).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from locust import FastHttpUser, between, events, task

from loadtest.traffic import Catalog, Shopper

CATALOG: Catalog | None = None


@events.init.add_listener
def _load_catalog(environment, **_kwargs) -> None:
    global CATALOG
    CATALOG = Catalog.from_store(Path(os.environ.get("VITRINE_MODEL_STORE", "models/store")))


class _Storefront(FastHttpUser):
    abstract = True

    def on_start(self) -> None:
        self.shopper = Shopper(CATALOG, random.Random(), known_share=self.known_share)

    def _send(self) -> None:
        method, path, body, name = self.shopper.next_request()
        if method == "POST":
            self.client.post(path, json=body, name=name)
        else:
            self.client.get(path, name=name)


class BrowsingShopper(_Storefront):
    """Browses pages, each with its recommendations and events; some buy."""

    weight, known_share = 6, 0.4
    wait_time = between(0.5, 3)

    @task
    def page(self) -> None:
        self._send()


class AnonymousBouncer(_Storefront):
    """Lands on the home page, looks at one or two products, leaves."""

    weight, known_share = 3, 0.0
    wait_time = between(1, 5)

    @task
    def visit(self) -> None:
        self.client.get("/v1/recommendations?placement=home&k=10&session_id=" + self.shopper.session_id,
                        name="recs:home")
        self._send()
        self.stop()


class EmailBatch(FastHttpUser):
    """The e-mail job: recommendations for known users, one after another."""

    weight = 1
    wait_time = between(0.05, 0.2)

    @task
    def email(self) -> None:
        user = random.choice(CATALOG.users)
        self.client.get(f"/v1/recommendations?placement=email&k=6&user_id={user}", name="recs:email")
