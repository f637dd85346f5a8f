"""A storefront's traffic, shared by the locust scenarios and the benchmarks: shoppers walk
through pages as a shop produces them, and each page view makes the requests a storefront
built on vitrine.js makes (one `/v1/page` call for its placements and slots, and its events).

A shopper lands on the home page (or, from a search engine or an e-mail, on a product page),
opens categories and products of the departments they care about, adds to the cart, sometimes
buys, sometimes searches, and leaves. Product pages show an item of the category being
browsed (the one a shopper would click), so sessions build real live state. Known shoppers
(signed in) and anonymous ones arrive in a mix; ids come from the served model.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from models import artifact

Request = tuple[str, str, dict | None, str]  # (method, path with query, JSON body, name for reports)
SLOTS = "&slot=home_hero&slot=promo"


@dataclass
class Catalog:
    items: list[str]
    popular: list[str]  # the head, which real traffic hits most
    users: list[str]
    categories: list[str]
    manifest: dict  # the served model's, for reports
    by_category: dict[str, list[str]] = field(default_factory=dict)  # most popular first
    category_of: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_store(cls, store: Path, sample: int = 20_000) -> Catalog:
        model = artifact.load_current(store)
        order = model.popularity.argsort()[::-1]
        rng = random.Random(0)
        items = [model.items.ids[i] for i in order[: sample]]
        users = rng.sample(model.user_ids, min(sample, len(model.user_ids)))
        category_of = {model.items.ids[i]: model.items.category[i] for i in order[: sample]
                       if model.items.category[i]}
        by_category: dict[str, list[str]] = {}
        for item in items:
            if item in category_of:
                by_category.setdefault(category_of[item], []).append(item)
        return cls(items=items, popular=items[:500], users=users, categories=sorted(by_category),
                   manifest=model.manifest, by_category=by_category, category_of=category_of)


class Shopper:
    """One shopper's visit, page by page."""

    def __init__(self, catalog: Catalog, rng: random.Random, known_share: float = 0.4):
        self.catalog, self.rng = catalog, rng
        self.user_id = rng.choice(catalog.users) if rng.random() < known_share else None
        self.session_id = uuid.uuid4().hex
        # The departments this shopper cares about: a couple of categories, weighted by size.
        self.interests = rng.sample(catalog.categories, k=min(2, len(catalog.categories)))
        self.cart: list[str] = []
        self.page = "entry"
        self.pending: deque[Request] = deque()
        self.done = False

    # -- the requests of one page view ------------------------------------------------------
    def _ids(self) -> str:
        return (f"user_id={quote(self.user_id)}&" if self.user_id else "") + f"session_id={self.session_id}"

    def event(self, type_: str, item_id: str | None = None, **extra) -> dict:
        body = {"event_id": uuid.uuid4().hex, "session_id": self.session_id, "type": type_,
                "ts": int(time.time() * 1000), **extra}
        if item_id is not None:
            body["item_id"] = item_id
        if self.user_id:
            body["user_id"] = self.user_id
        return body

    def _category(self) -> str:
        if self.rng.random() < 0.8:
            return self.rng.choice(self.interests)
        return self.rng.choice(self.catalog.categories)

    def shown(self, items: list[str]) -> None:
        """Items a page showed (a client that reads the answers tells): the next product page
        is often one of them, as a shopper clicks a recommendation."""
        self.clicks = items

    def _item(self, category: str | None = None) -> str:
        clicks = getattr(self, "clicks", None)
        if clicks and self.rng.random() < 0.5:
            return self.rng.choice(clicks[:6])
        pool = self.catalog.by_category.get(category or self._category()) or self.catalog.items
        # Shoppers click the top of a list far more than its tail.
        return pool[min(int(self.rng.expovariate(1 / 8)), len(pool) - 1)]

    def home(self) -> list[Request]:
        return [("GET", f"/v1/page?placement=home&k=10{SLOTS}&{self._ids()}", None, "page:home")]

    def category_page(self) -> list[Request]:
        category = self._category()
        return [("POST", "/v1/events", self.event("category_view", category=category),
                 "events:category_view"),
                ("GET", f"/v1/page?placement=category&category={quote(category)}&k=24&{self._ids()}", None,
                 "page:category")]

    def product_page(self) -> list[Request]:
        item = self._item()
        category = self.catalog.category_of.get(item)
        extra = {"category": category} if category else {}
        reqs = [("POST", "/v1/events", self.event("view", item, **extra), "events:view"),
                ("GET", f"/v1/page?placement=product&item_id={quote(item)}&k=10&{self._ids()}", None,
                 "page:product")]
        if self.rng.random() < 0.3:
            reqs.append(("GET", f"/v1/items/{quote(item)}/similar?k=8", None, "similar"))
        self.last_item = item
        return reqs

    def add_to_cart(self) -> list[Request]:
        item = getattr(self, "last_item", None) or self._item()
        self.cart.append(item)
        items = "&".join(f"item_id={quote(i)}" for i in self.cart[-10:])
        return [("POST", "/v1/events", self.event("add_to_cart", item), "events:add_to_cart"),
                ("GET", f"/v1/page?placement=cart&{items}&k=8&{self._ids()}", None, "page:cart")]

    def purchase(self) -> list[Request]:
        events = [self.event("purchase", item, quantity=1) for item in self.cart]
        self.cart = []
        return [("POST", "/v1/events", {"events": events}, "events:purchase")]

    def search(self) -> list[Request]:
        category = self._category()
        event = self.event("search", query=category.split("/")[0], category=category)
        return [("POST", "/v1/events", event, "events:search"),
                ("GET", f"/v1/recommendations?placement=search&category={quote(category)}&k=24&{self._ids()}",
                 None, "recs:search")]

    def trending(self) -> list[Request]:
        return [("GET", "/v1/trending?k=10", None, "trending")]

    # -- the walk -----------------------------------------------------------------------------
    NEXT = {  # page -> [(next page, probability)]; "leave" ends the visit
        "entry": [("home", 0.7), ("product", 0.2), ("search", 0.1)],
        "home": [("category", 0.45), ("product", 0.3), ("search", 0.1), ("trending", 0.05), ("leave", 0.1)],
        "category": [("product", 0.65), ("category", 0.15), ("home", 0.1), ("leave", 0.1)],
        "product": [("product", 0.35), ("add_to_cart", 0.2), ("category", 0.2), ("home", 0.1),
                    ("leave", 0.15)],
        "add_to_cart": [("purchase", 0.35), ("product", 0.4), ("home", 0.1), ("leave", 0.15)],
        "purchase": [("home", 0.3), ("leave", 0.7)],
        "search": [("product", 0.6), ("category", 0.2), ("leave", 0.2)],
        "trending": [("product", 0.7), ("leave", 0.3)],
    }
    PAGES = {"home": home, "category": category_page, "product": product_page,
             "add_to_cart": add_to_cart, "purchase": purchase, "search": search, "trending": trending}

    def page_view(self) -> list[Request]:
        """The next page's requests; [] once the shopper has left."""
        if self.done:
            return []
        pages, weights = zip(*self.NEXT[self.page], strict=True)
        page = self.rng.choices(pages, weights)[0]
        if page == "purchase" and not self.cart:
            page = "home"
        if page == "leave":
            self.done = True
            return []
        self.page = page
        return self.PAGES[page](self)

    def next_request(self) -> Request | None:
        """The visit as one stream of requests (the benchmark's view); None once it ended."""
        while not self.pending:
            requests = self.page_view()
            if not requests:
                return None
            self.pending.extend(requests)
        return self.pending.popleft()


class Traffic:
    """Many shoppers at once, arriving and leaving: the benchmark's request stream. With no
    catalog, /healthz only (the bare floor)."""

    def __init__(self, catalog: Catalog | None, seed: int = 0, known_share: float = 0.4,
                 concurrent: int = 200):
        self.catalog, self.rng = catalog, random.Random(seed)
        self.known_share, self.concurrent = known_share, concurrent
        self.shoppers: list[Shopper] = []

    def next(self) -> Request:
        if self.catalog is None:
            return "GET", "/healthz", None, "healthz"
        while True:
            if len(self.shoppers) < self.concurrent:
                self.shoppers.append(Shopper(self.catalog, self.rng, self.known_share))
            i = self.rng.randrange(len(self.shoppers))
            req = self.shoppers[i].next_request()
            if req is not None:
                return req
            self.shoppers[i] = self.shoppers[-1]  # left: a new shopper takes their place
            self.shoppers.pop()
