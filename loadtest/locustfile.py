"""Locust scenarios of storefront traffic: shoppers walking through a shop's pages, each page
making the calls a storefront built on vitrine.js makes (its events, one `/v1/page` call for
its placements and slots), built on the same traffic model as the benchmarks.

    pip install 'vitrine[load]'
    VITRINE_MODEL_STORE=models/store locust -f loadtest/locustfile.py --headless \\
        -u 200 -r 20 -t 5m --host http://127.0.0.1:8080 --csv results/storefront

`--csv PREFIX` writes PREFIX_stats.csv (per request name: counts, failures, percentiles),
PREFIX_stats_history.csv and PREFIX_failures.csv. Ids (items, users, categories) come from the
model store the server serves (VITRINE_MODEL_STORE), so requests hit real items; a shopper
clicks what the pages showed it half of the time. Set LOADTEST_API_KEY when the server wants a
public key. Only point it at your own server (loopback or your own test hosts).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from locust import FastHttpUser, between, events, task

from loadtest.traffic import Catalog, Request, Shopper

CATALOG: Catalog | None = None
KEY = os.environ.get("LOADTEST_API_KEY")
HEADERS = {"Authorization": f"Bearer {KEY}"} if KEY else {}


@events.init.add_listener
def _load_catalog(environment, **_kwargs) -> None:
    global CATALOG
    CATALOG = Catalog.from_store(Path(os.environ.get("VITRINE_MODEL_STORE", "models/store")))


class _Storefront(FastHttpUser):
    """A shopper's visit, one page at a time; a new shopper when they leave."""

    abstract = True
    known_share = 0.4

    def on_start(self) -> None:
        self.shopper = Shopper(CATALOG, random.Random(), known_share=self.known_share)

    def _request(self, req: Request) -> None:
        method, path, body, name = req
        if method == "POST":
            self.client.post(path, json=body, name=name, headers=HEADERS)
            return
        with self.client.get(path, name=name, headers=HEADERS, catch_response=True) as resp:
            if resp.status_code == 200 and name.startswith("page:"):
                answer = resp.json()
                shown = [x["item_id"] for recs in answer.get("recommendations", {}).values()
                         for x in recs["items"]]
                self.shopper.shown(shown)

    @task
    def page(self) -> None:
        requests = self.shopper.page_view()
        if not requests:  # left the shop: someone else comes in
            self.shopper = Shopper(CATALOG, random.Random(), known_share=self.known_share)
            requests = self.shopper.page_view()
        for req in requests:
            self._request(req)


class SignedInOrNotShopper(_Storefront):
    """Browses departments, opens products, fills a cart, sometimes buys; 40% signed in."""

    weight, known_share = 6, 0.4
    wait_time = between(1, 5)  # reading a page


class AnonymousVisitor(_Storefront):
    """New visitors only: the cold start the ladder must answer well."""

    weight, known_share = 3, 0.0
    wait_time = between(1, 6)


class EmailBatch(FastHttpUser):
    """The e-mail job: recommendations for known users, one after another."""

    weight = 1
    wait_time = between(0.05, 0.2)

    @task
    def email(self) -> None:
        user = random.choice(CATALOG.users)
        self.client.get(f"/v1/recommendations?placement=email&k=6&user_id={user}", name="recs:email",
                        headers=HEADERS)
