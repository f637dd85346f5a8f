"""Per-model memos and scratch space, apart from the immutable ServingModel: each cache names
what invalidates it. A new model version gets new Caches (the holder builds them together);
nothing here may change what an answer contains, only how fast it is computed."""

from __future__ import annotations

import numpy as np

from server.catalog.view import ItemsView
from server.recommend.model import ServingModel

# Entries of each memo (bounded memory, cleared when full).
SIMILAR_MAX = 50_000  # product pages ask for the same items: a few MB of candidate lists
# Memory for the per-category factor copies, per worker and model (100k items in 64 categories
# take 26 MB); categories that don't fit are gathered per request.
CATEGORY_BLOCKS_MAX_BYTES = 64 << 20


class Caches:
    def __init__(self, model: ServingModel):
        # Index candidates of "similar to these items", before any filter: they depend on the
        # model alone, so a stock or rule change never makes them stale (filters run per request).
        self.similar: dict = {}
        # Live sessions' folded-in vectors, reused for the placements of one page view while the
        # session is unchanged (retrieval._session_part keys them by the session's content), at
        # most `recommend.session_reuse_entries` (~2.8 KB each for 50-item sessions).
        self.sessions: dict = {}
        # Per category (and version of the catalog's category pools), a contiguous transposed copy
        # of its items' factors, made on first use: a category page would otherwise gather the
        # same thousands of rows (~1 MB) per request.
        self.category_blocks: dict[tuple[int, int], np.ndarray] = {}
        self.category_block_bytes = 0
        # All False between uses: the finishing stage marks excluded items and clears them again
        # within one synchronous call, so requests on the event loop never see each other's marks.
        # Sized for the items the live catalog may add after training (grown when it does).
        self.scratch = np.zeros(model.n_items + 1_024, dtype=bool)
        self._base_view: ItemsView | None = None
        self._segments: dict[str, str] | None = None
        self._category_counts: list[tuple[str, int]] | None = None

    def category_counts(self, model: ServingModel) -> list[tuple[str, int]]:
        """(category, items), by name: the catalog's menu, built on first use."""
        if self._category_counts is None:
            self._category_counts = [(c, int(model.popular_in[code].size))
                                     for code, c in enumerate(model.categories)]
        return self._category_counts

    def segment_of(self, model: ServingModel, user_id: str) -> str | None:
        """The RFM segment the model published for a customer (None: not a purchasing customer,
        or a model without segments). The lookup is built on first use: many models serve
        recommendations only."""
        if self._segments is None:
            seg = model.art.segments or {}
            users, names = seg.get("users") or [], seg.get("segment") or []
            self._segments = dict(zip(users, names, strict=False)) if len(users) == len(names) else {}
        return self._segments.get(user_id)

    def category_scores(self, model: ServingModel, key: tuple[int, int], pool: np.ndarray,
                        vec: np.ndarray) -> np.ndarray:
        """Inner products of `vec` with the items of a category (`pool`, in that order); `key`:
        the category's code and the version of the pools it comes from."""
        block = self.category_blocks.get(key)
        if block is None:
            block = np.ascontiguousarray(model.item_factors[pool].T)
            if self.category_block_bytes + block.nbytes <= CATEGORY_BLOCKS_MAX_BYTES:
                self.category_blocks[key] = block
                self.category_block_bytes += block.nbytes
        return vec @ block

    def scratch_for(self, n_items: int) -> np.ndarray:
        """The scratch mask, at least `n_items` long (new catalog items extend the rows)."""
        if self.scratch.size < n_items:
            self.scratch = np.zeros(2 * n_items, dtype=bool)
        return self.scratch

    def base_view(self, model: ServingModel) -> ItemsView:
        """The model's items with no live catalog over them (tools and tests without Redis)."""
        if self._base_view is None:
            self._base_view = ItemsView(model)
        return self._base_view


def remember(memo: dict, limit: int, key, value) -> None:
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
