"""The trending snapshot: each worker's in-process copy of the live trending lists, refreshed in
the background, so no request waits on a second Redis round trip for them.

The overall list is refreshed every `trending_refresh_s`; a category's list from the first time
a request asks for it (that request falls back to popularity: the refresh is woken at once, so
the next one has it) for as long as requests keep asking. When Redis can't be read the last
lists keep serving for `MAX_AGE_S`, then the ladder goes on to popularity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from server.catalog.view import ItemsView
from server.store.records import StoreUnavailable
from server.store.trending import TrendingStore

log = logging.getLogger("vitrine.trending")
MAX_AGE_S = 60.0  # trending over a half-life of hours barely moves in a minute
OVERALL_ITEMS = 500  # enough to survive the filters and the diversity cap at max_k
CATEGORY_ITEMS = 200
MAX_CATEGORIES = 1_024  # lists kept per worker; the least recently asked go first
WANTED_FOR_S = 60.0  # a category no request asked for in this long is no longer refreshed


@dataclass
class _List:
    rows: list[tuple[str, float]]
    fetched_at: float  # time.monotonic()
    # per (model version, items in the view): a new catalog item is mapped from the next call
    mapped: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


class TrendingSnapshot:
    def __init__(self, store: TrendingStore, refresh_s: float):
        self.store, self.refresh_s = store, refresh_s
        self._lists: dict[str | None, _List] = {}
        self._wanted: OrderedDict[str, float] = OrderedDict()  # category -> last asked (monotonic)
        self._wake = asyncio.Event()
        self.last_success = 0.0  # monotonic time of the last successful refresh
        self.last_error: str | None = None

    @property
    def healthy(self) -> bool:
        """The last refresh succeeded, recently: a cold visitor's only live signal is this
        snapshot, so its answer says `live_signals: false` from the first failed refresh on
        (within `refresh_s` of Redis going away), while the last lists keep serving."""
        fresh = time.monotonic() - self.last_success <= max(3 * self.refresh_s, 2.0)
        return fresh and self.last_error is None

    def get(self, view: ItemsView, category: str | None) -> tuple[np.ndarray, np.ndarray] | None:
        """(item rows of the view, scores normalised to 1), best first; None when not known yet
        or too old. Items the live catalog added since training are mapped too."""
        now = time.monotonic()
        if category is not None:
            if category not in self._wanted:
                self._wake.set()
            self._wanted[category] = now
            self._wanted.move_to_end(category)
            if len(self._wanted) > MAX_CATEGORIES:
                self._lists.pop(self._wanted.popitem(last=False)[0], None)
        entry = self._lists.get(category)
        if entry is None or now - entry.fetched_at > MAX_AGE_S:
            return None
        key = (view.model.version, view.n_items)
        mapped = entry.mapped.get(key)
        if mapped is None:
            if len(entry.mapped) > 4:
                entry.mapped.clear()
            mapped = entry.mapped[key] = _map(view, entry.rows)
        return mapped

    async def refresh(self) -> None:
        """Read the overall list and every category asked for recently, in one pipeline."""
        now = time.monotonic()
        for category in [c for c, at in self._wanted.items() if now - at > WANTED_FOR_S]:
            del self._wanted[category]
            self._lists.pop(category, None)
        now_ms = int(time.time() * 1000)
        categories = list(self._wanted)
        overall = await self.store.top_many([None], n=OVERALL_ITEMS, now_ms=now_ms)
        by_category = (await self.store.top_many(categories, n=CATEGORY_ITEMS, now_ms=now_ms)
                       if categories else {})
        fetched = time.monotonic()
        for category, rows in {**overall, **by_category}.items():
            self._lists[category] = _List(rows, fetched)
        self.last_success, self.last_error = fetched, None

    async def run(self) -> None:
        """Refresh forever (a task of the app); a failure keeps the last lists and retries."""
        while True:
            try:
                await self.refresh()
            except StoreUnavailable as exc:
                if self.last_error is None:
                    log.warning("trending lists not refreshed, serving the last ones: %s", exc)
                self.last_error = str(exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.refresh_s)


def _map(view: ItemsView, rows: list[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Live rows (item id, score) → the view's item rows and scores normalised to 1."""
    index_of = view.index_of
    pairs = [(i, s) for i, s in ((index_of(x), s) for x, s in rows) if i is not None]
    items = np.array([p[0] for p in pairs], dtype=np.int64)
    scores = np.array([p[1] for p in pairs], dtype=np.float64)
    return items, scores / max(float(scores.max()), 1e-9) if scores.size else scores
