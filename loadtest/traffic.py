"""A storefront's traffic, shared by the locust scenarios and the benchmark: which requests a
shopper's page views produce, with ids drawn from the served model."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from models import artifact


@dataclass
class Catalog:
    items: list[str]
    popular: list[str]  # the head, which real traffic hits most
    users: list[str]
    categories: list[str]
    manifest: dict  # the served model's, for reports

    @classmethod
    def from_store(cls, store: Path, sample: int = 20_000) -> Catalog:
        model = artifact.load_current(store)
        order = model.popularity.argsort()[::-1]
        rng = random.Random(0)
        items = [model.items.ids[i] for i in order[: sample]]
        users = rng.sample(model.user_ids, min(sample, len(model.user_ids)))
        return cls(items=items, popular=items[:500], users=users,
                   categories=sorted({c for c in model.items.category if c}), manifest=model.manifest)


class Shopper:
    """One shopper's page views: home → category/product → cart, each with its events."""

    def __init__(self, catalog: Catalog, rng: random.Random, known_share: float = 0.4):
        self.catalog, self.rng = catalog, rng
        self.user_id = rng.choice(catalog.users) if rng.random() < known_share else None
        self.session_id = uuid.uuid4().hex

    def _ids(self) -> str:
        return (f"user_id={self.user_id}&" if self.user_id else "") + f"session_id={self.session_id}"

    def _item(self) -> str:
        pool = self.catalog.popular if self.rng.random() < 0.5 else self.catalog.items
        return self.rng.choice(pool)

    def event(self, type_: str, item_id: str) -> dict:
        body = {"event_id": uuid.uuid4().hex, "session_id": self.session_id, "type": type_,
                "item_id": item_id, "ts": int(time.time() * 1000)}
        if self.user_id:
            body["user_id"] = self.user_id
        return body

    def next_request(self) -> tuple[str, str, dict | None, str]:
        """(method, path with query, JSON body or None, name for the report)."""
        r = self.rng.random()
        if r < 0.30:
            return "GET", f"/v1/recommendations?placement=home&k=10&{self._ids()}", None, "recs:home"
        if r < 0.50:
            item = self._item()
            return ("GET", f"/v1/recommendations?placement=product&item_id={item}&k=10&{self._ids()}",
                    None, "recs:product")
        if r < 0.58:
            cat = self.rng.choice(self.catalog.categories)
            return ("GET", f"/v1/recommendations?placement=category&category={cat}&k=10&{self._ids()}",
                    None, "recs:category")
        if r < 0.63:
            return "GET", f"/v1/items/{self._item()}/similar?k=10", None, "similar"
        if r < 0.67:
            return "GET", "/v1/trending?k=10", None, "trending"
        kind = "view" if r < 0.95 else ("add_to_cart" if r < 0.99 else "purchase")
        return "POST", "/v1/events", self.event(kind, self._item()), f"events:{kind}"
