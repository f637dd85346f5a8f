"""What a recommendation request asks of customers: consent (a shopper who refused gets the
list every shopper gets on that page, and is told), consumables bought too recently hidden,
and the `buy_again` placement's list. No aiohttp: the routes call these with what they read."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from server.catalog.view import ItemsView
from server.customers.records import CustomerRead
from server.customers.scores import due_now, due_reason
from server.customers.service import Customers
from server.merchandising.applied import Applied
from server.ops.models import Served
from server.recommend.finish import Explain, Ranked, Stage, excluded_indices, finish
from server.recommend.retrieval import Query
from server.shopper import ShopperState
from server.store.records import LiveSession

BUY_AGAIN = "buy_again"


@dataclass(slots=True)
class Prepared:
    query: Query
    live: LiveSession | None
    personalization: bool  # False: the shopper refused, nothing of theirs shaped the list
    read: CustomerRead | None = None


def prepare(customers: Customers, served: Served, q: Query, state: ShopperState) -> Prepared:
    """The query and live state a ranking may use for this shopper."""
    read = state.customer
    if read is not None and not read.personalization:
        return Prepared(replace(q, user_id=None, session_id=None), None, False, read)
    if q.placement != BUY_AGAIN and (q.user_id or q.session_id):
        hide = customers.not_yet_due(served, q.user_id, read, q.now_ms, None if q.user_id else q.session_id)
        if hide:
            q = replace(q, exclude=q.exclude | hide)
    return Prepared(q, state.live, True, read)


def rank_buy_again(customers: Customers, served: Served, prepared: Prepared, *, view: ItemsView | None = None,
                   rules: Applied | None = None) -> Ranked:
    """The customer's past purchases due again now, closest to one cycle first (none due: an
    empty list, which a storefront hides). Through the finishing stage like every list: in stock
    (the live catalog's `view`), not excluded, the merchandising `rules` in scope applied."""
    q, model = prepared.query, served.model
    published = customers.published(served)
    if published is None or not published.consumable_cycles or not prepared.personalization:
        return Ranked([], [], [], BUY_AGAIN)
    purchases = customers.purchases(served, q.user_id, prepared.read)
    due = due_now(purchases, published.cycles, q.now_ms, q.k + len(q.exclude) + 16)
    if not due:
        return Ranked([], [], [], BUY_AGAIN)
    items = np.array([i for i, _ in due], dtype=np.int64)
    scores = np.array([1.0 - abs(d - 1.0) for _, d in due], dtype=np.float32)
    view = view if view is not None else served.caches.base_view(model)
    stage = Stage(model, served.caches, view, rules if rules is not None else Applied(), prepared.live,
                  excluded_indices(view, q, prepared.live), 0.0, 1.0)
    ranked = finish(stage, items, scores, q.k, Explain(BUY_AGAIN, label="buy it again"))
    last = {}
    for item, ts in purchases:
        last[item] = max(ts, last.get(item, ts))
    # Pinned items (not purchases) keep their own reason.
    ranked.reasons = [due_reason(last[i], float(published.cycles[i]), q.now_ms) if i in last else r
                      for i, r in zip(ranked.items, ranked.reasons, strict=True)]
    return ranked
