"""ItemsView: the served model's items as the live catalog says they are now.

One view per model version, built from the model's item metadata and the catalog's records,
then kept current by applying the records each catalog change touches (O(changed items)). It
holds what the hot path reads per candidate as arrays indexed like the model's item rows
(availability, category, price, brand), so filtering never looks at a record or Redis.

Items the catalog added after the model was trained get rows after the model's (`n_model` and
up): they have no factors, so they are reached through trending, category popularity, similar
items by category and pins, until the next training learns them. Pure code, no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import numpy as np

from models.catalog import ItemRecord
from server.recommend.model import ServingModel

_CHANGES_KEPT = 4_096  # change batches remembered for consumers catching up (rule bits)
_EMPTY = ItemRecord()
_HIDDEN = ItemRecord(hidden=True)


class ItemsView:
    def __init__(self, model: ServingModel, records: Mapping[str, ItemRecord] = {}, seq: int = 0):
        n = model.n_items
        self.model, self.n_model = model, n
        self.records = records  # the catalog's records (display fields are read from them)
        self.new_ids: list[str] = []
        self.new_index: dict[str, int] = {}
        self.categories = list(model.categories)
        self.category_code = dict(model.category_code)
        self.brands: list[str] = []
        self.brand_code: dict[str, int] = {}
        self.tag_items: dict[str, set[int]] = {}
        self._item_tags: dict[int, tuple[str, ...]] = {}
        cap = n + 1_024
        self.in_stock = _grown(np.asarray(model.available, bool), cap, True)
        self.hidden = np.zeros(cap, bool)
        self.category = _grown(model.item_category, cap, -1)
        self.price = _grown(np.asarray(model.art.items.price, np.float32), cap, np.nan)
        self.consumable = _grown(np.asarray(model.consumable, bool), cap, False)
        self.brand = np.full(cap, -1, np.int32)
        self.available = self.in_stock.copy()  # in stock and not hidden: what answers may show
        self.visible = np.ones(cap, bool)  # not hidden (an out-of-stock rule may show the rest)
        self._pools: dict[int, np.ndarray] | None = None  # None: the model's (no category moved)
        self._pools_stale = False
        self.pools_version = 0  # bumped when the pools change (cached category blocks go stale)
        # Consumers (rule bits) catch up from here: (version, item rows changed).
        self.version = 0
        self._changes: deque[tuple[int, np.ndarray]] = deque(maxlen=_CHANGES_KEPT)
        self.seq = seq  # the catalog's change sequence this view reflects
        for item_id, record in records.items():
            self._apply(item_id, record)

    # -- lookups ------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return self.n_model + len(self.new_ids)

    def index_of(self, item_id: str) -> int | None:
        i = self.model.art.item_index.get(item_id)
        return self.new_index.get(item_id) if i is None else i

    def id_of(self, i: int) -> str:
        return self.model.art.items.ids[i] if i < self.n_model else self.new_ids[i - self.n_model]

    def category_of(self, i: int) -> str | None:
        code = int(self.category[i])
        return self.categories[code] if code >= 0 else None

    def price_of(self, i: int) -> float | None:
        """The price to show: the catalog's as given, else the model's float32 as its shortest
        decimal (9.99, not 9.989999771)."""
        record = self.record(i)
        if record is not None and record.price is not None:
            return record.price
        price = self.price[i]
        return None if price != price else float(str(price))

    def tags_of(self, i: int) -> tuple[str, ...]:
        return self._item_tags.get(i, ())

    def record(self, i: int) -> ItemRecord | None:
        return self.records.get(self.id_of(i))

    def pool(self, code: int) -> np.ndarray | None:
        """The model's items of category `code`, most popular first (None: none)."""
        if self._pools_stale:
            self._rebuild_pools()
        return (self.model.popular_in if self._pools is None else self._pools).get(code)

    def changed_since(self, version: int) -> np.ndarray | None:
        """Rows changed after `version`; None when too far behind (rebuild instead)."""
        if version == self.version:
            return np.empty(0, np.int64)
        if not self._changes or self._changes[0][0] > version + 1:
            return None
        return np.unique(np.concatenate([rows for v, rows in self._changes if v > version]))

    # -- changes ------------------------------------------------------------------------
    def apply(self, changed: Mapping[str, ItemRecord | None], seq: int) -> None:
        """Apply the current records of the items a catalog change touched."""
        rows = [r for r in (self._apply(item_id, record) for item_id, record in changed.items())
                if r is not None]
        self.seq = seq
        if rows:
            self.version += 1
            self._changes.append((self.version, np.array(rows, np.int64)))

    def _apply(self, item_id: str, record: ItemRecord | None) -> int | None:
        i = self.index_of(item_id)
        if i is None:
            if record is None or record.hidden:
                return None
            i = self._add(item_id)
        new = i >= self.n_model
        r = record or (_HIDDEN if new else _EMPTY)  # a new item no longer catalogued is gone
        m = self.model
        code = (self._category(r.category) if r.category is not None
                else -1 if new else int(m.item_category[i]))
        if code != self.category[i]:
            self.category[i] = code
            self._pools_stale |= not new  # rebuilt on next use
        self.price[i] = r.price if r.price is not None else np.nan if new else m.art.items.price[i]
        self.in_stock[i] = r.in_stock if r.in_stock is not None else True if new else m.available[i]
        self.hidden[i] = r.hidden
        self.available[i] = self.in_stock[i] and not r.hidden
        self.visible[i] = not r.hidden
        self.consumable[i] = r.consumable if r.consumable is not None else False if new else m.consumable[i]
        self.brand[i] = self._brand(r.brand) if r.brand is not None else -1
        self._set_tags(i, r.tags or ())
        return i

    def _add(self, item_id: str) -> int:
        i = self.n_model + len(self.new_ids)
        self.new_ids.append(item_id)
        self.new_index[item_id] = i
        if i >= self.hidden.size:
            cap = 2 * self.hidden.size
            self.in_stock, self.hidden = _grown(self.in_stock, cap, True), _grown(self.hidden, cap, False)
            self.category, self.price = _grown(self.category, cap, -1), _grown(self.price, cap, np.nan)
            self.consumable, self.brand = _grown(self.consumable, cap, False), _grown(self.brand, cap, -1)
            self.available, self.visible = _grown(self.available, cap, False), _grown(self.visible, cap, True)
        return i

    def _category(self, name: str) -> int:
        code = self.category_code.get(name)
        if code is None:
            code = self.category_code[name] = len(self.categories)
            self.categories.append(name)
        return code

    def _brand(self, name: str) -> int:
        code = self.brand_code.get(name)
        if code is None:
            code = self.brand_code[name] = len(self.brands)
            self.brands.append(name)
        return code

    def _set_tags(self, i: int, tags: Iterable[str]) -> None:
        new, old = tuple(tags), self._item_tags.get(i, ())
        if new == old:
            return
        for tag in old:
            self.tag_items[tag].discard(i)
        for tag in new:
            self.tag_items.setdefault(tag, set()).add(i)
        if new:
            self._item_tags[i] = new
        else:
            self._item_tags.pop(i, None)

    def _rebuild_pools(self) -> None:
        """After a category change: each category's model items, most popular first."""
        order = self.model.popular
        cats = self.category[order]
        by_cat = cats.argsort(kind="stable")
        bounds = np.flatnonzero(np.diff(cats[by_cat])) + 1
        groups = np.split(by_cat, bounds)
        self._pools = {int(cats[g[0]]): order[g] for g in groups if g.size and cats[g[0]] >= 0}
        self._pools_stale = False
        self.pools_version += 1


def _grown(a: np.ndarray, size: int, fill) -> np.ndarray:
    out = np.full(size, fill, dtype=a.dtype)
    out[: min(a.size, size)] = a[:size]
    return out
