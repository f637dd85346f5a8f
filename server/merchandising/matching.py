"""Which items a rule's `match` selects, over an ItemsView's arrays: all of them (when rules
are compiled) or the rows a catalog change touched (to keep the rules' bits current). Pure."""

from __future__ import annotations

import numpy as np

from server.catalog.view import ItemsView
from server.merchandising.rules import Match


class Matcher:
    """Which items a rule's `match` selects, over a view's arrays."""

    def __init__(self, match: Match):
        self.categories = tuple(match.category or ())
        self.brands = frozenset(match.brand or ())
        self.tags = tuple(match.tag or ())
        self.lo = match.price.min if match.price is not None else None
        self.hi = match.price.max if match.price is not None else None
        self.item_ids = frozenset(match.item_id or ())
        self.has_price = match.price is not None

    def _category_table(self, view: ItemsView) -> np.ndarray:
        prefixes = self.categories
        slashed = tuple(p + "/" for p in prefixes)
        table = np.array([c in prefixes or c.startswith(slashed) for c in view.categories] + [False], bool)
        return table  # the last entry: items without a category (code -1)

    def all_items(self, view: ItemsView) -> np.ndarray:
        """A mask over the view's rows (its capacity)."""
        size = view.hidden.size
        ok = np.ones(size, bool)
        if self.categories:
            ok &= self._category_table(view)[view.category]
        if self.brands:
            table = np.array([b in self.brands for b in view.brands] + [False], bool)
            ok &= table[view.brand]
        if self.has_price:
            ok &= self._price_ok(view.price)
        if self.tags:
            tagged = np.zeros(size, bool)
            for tag in self.tags:
                rows = view.tag_items.get(tag)
                if rows:
                    tagged[np.fromiter(rows, np.int64, len(rows))] = True
            ok &= tagged
        if self.item_ids:
            listed = np.zeros(size, bool)
            rows = [i for i in map(view.index_of, self.item_ids) if i is not None]
            listed[rows] = True
            ok &= listed
        return ok

    def rows(self, view: ItemsView, rows: np.ndarray) -> np.ndarray:
        """A mask over `rows` (the items a catalog change touched)."""
        ok = np.ones(rows.size, bool)
        if self.categories:
            ok &= self._category_table(view)[view.category[rows]]
        if self.brands:
            table = np.array([b in self.brands for b in view.brands] + [False], bool)
            ok &= table[view.brand[rows]]
        if self.has_price:
            ok &= self._price_ok(view.price[rows])
        if self.tags:
            wanted = set(self.tags)
            ok &= np.array([not wanted.isdisjoint(view.tags_of(i)) for i in rows.tolist()], bool)
        if self.item_ids:
            ok &= np.array([view.id_of(i) in self.item_ids for i in rows.tolist()], bool)
        return ok

    def _price_ok(self, price: np.ndarray) -> np.ndarray:
        ok = ~np.isnan(price)
        if self.lo is not None:
            ok &= price >= self.lo
        if self.hi is not None:
            ok &= price <= self.hi
        return ok
