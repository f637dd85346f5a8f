"""The customers feature as the app holds it: the store, the segment rules in force, the served
model's published customers, and the per-customer computations the routes and the trigger
worker share."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.exceptions import RedisError

from server.customers.published import PublishedCustomers
from server.customers.records import CustomerRead
from server.customers.rules import SegmentRulesSnapshot
from server.customers.scores import CustomerScores, live_stats, merged_purchases, score_customer, too_recent
from server.customers.store import CustomerStore
from server.ops.models import Served
from server.recommend.model import ServingModel
from server.settings import Settings

log = logging.getLogger("vitrine.customers")
POLL_S = 0.5
# A customer's segment and hidden consumables move with days (recency, dueness): computed once
# and reused for a minute per worker while their purchases are unchanged, so a browsing
# customer's requests skip the work (~45 and ~25 µs, benchmarks/results/customers_cost.md).
MEMO_MS = 60_000
MEMO_ENTRIES = 20_000


def _prepared(model: ServingModel) -> PublishedCustomers:
    """The model's customers; none (segments from live purchases only, no buy-again) when its
    customer files can't be read: recommendations must not fail for them."""
    try:
        return PublishedCustomers.of(model)
    except Exception:
        log.exception("model %s: its customer files can't be used; serving without them", model.version)
        return PublishedCustomers.empty()


class Customers:
    def __init__(self, store: CustomerStore, rules: SegmentRulesSnapshot, settings: Settings,
                 served_model: Callable[[], Served | None]):
        self.store, self.rules, self.settings = store, rules, settings
        self.served_model = served_model
        self._published: tuple[ServingModel, PublishedCustomers] | None = None
        self._memo: dict[tuple, tuple[int, object]] = {}

    def _remembered(self, key: tuple, now_ms: int, compute):
        hit = self._memo.get(key)
        if hit is not None and 0 <= now_ms - hit[0] <= MEMO_MS:
            return hit[1]
        value = compute()
        if len(self._memo) >= MEMO_ENTRIES:
            self._memo.clear()
        self._memo[key] = (now_ms, value)
        return value

    def published(self, served: Served | None) -> PublishedCustomers | None:
        """The served model's customers (built on first use per version, if the background
        didn't build it first)."""
        if served is None:
            return None
        cached = self._published
        if cached is None or cached[0] is not served.model:
            cached = self._published = (served.model, _prepared(served.model))
            self._memo.clear()
        return cached[1]

    def as_of_ms(self, served: Served | None) -> int:
        published = self.published(served)
        return published.as_of_ms if published is not None else 0

    def scores(self, served: Served | None, user_id: str | None, read: CustomerRead | None,
               now_ms: int) -> CustomerScores | None:
        """A signed-in customer's live segment, features and churn probability (None for an
        anonymous shopper, or one who refused personalization)."""
        if not user_id or (read is not None and not read.personalization):
            return None
        published = self.published(served)
        rules, source = self.rules.effective(published)
        purchases = read.purchases if read is not None else []

        def compute() -> CustomerScores:
            stats = live_stats(published.stats(user_id) if published else None, purchases, rules.windows)
            return score_customer(stats, now_ms, rules, published.edges if published else None,
                                  published.churn_probability(user_id) if published else None)

        key = ("scores", user_id, source, self.rules.version, len(purchases),
               purchases[-1] if purchases else None)
        return self._remembered(key, now_ms, compute)

    def purchases(self, served: Served, user_id: str | None,
                  read: CustomerRead | None) -> list[tuple[int, int]]:
        """(item index, ts) of everything the customer is known to have bought."""
        published = self.published(served)
        history = published.history(served.model, user_id) if published is not None else []
        return merged_purchases(history, read.purchases if read is not None else (),
                                served.model.art.item_index)

    def not_yet_due(self, served: Served, user_id: str | None, read: CustomerRead | None, now_ms: int,
                    session_id: str | None = None) -> frozenset[str]:
        """Consumables the customer bought too recently to be shown again (item ids)."""
        published = self.published(served)
        if published is None or not published.consumable_cycles:
            return frozenset()
        purchases = read.purchases if read is not None else []
        if not user_id and not purchases:
            return frozenset()

        def compute() -> frozenset[str]:
            ids = served.model.art.items.ids
            hidden = too_recent(self.purchases(served, user_id, read), published.cycles, now_ms)
            return frozenset(ids[i] for i in hidden)

        key = ("hidden", user_id, session_id, len(purchases), purchases[-1] if purchases else None)
        return self._remembered(key, now_ms, compute)

    async def run(self) -> None:
        """Follow the stored segment rules, and build a new model's customers off the loop."""
        while True:
            with contextlib.suppress(RedisError, OSError):
                await self.rules.refresh()
            served = self.served_model()
            if served is not None and (self._published is None or self._published[0] is not served.model):
                built = await asyncio.to_thread(_prepared, served.model)
                self._published = (served.model, built)
                self._memo.clear()
            await asyncio.sleep(POLL_S)
