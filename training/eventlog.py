"""The trainer's in-memory event log: columnar numpy arrays with integer codes.

Readers (CSV, JSON Lines, Parquet, the synthetic generator) all produce an `EventLog`, so
everything downstream (interaction matrix, splits, evaluation, segments) is format-agnostic
and vectorized. Ids are mapped to dense codes once; the code → id tables travel along.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from models.events import EVENT_TYPES

TYPE_CODE: dict[str, int] = {name: code for code, name in enumerate(EVENT_TYPES)}


@dataclass
class EventLog:
    user: np.ndarray  # int32 code into user_ids, one per event
    item: np.ndarray  # int32 code into item_ids; -1 for events without an item
    type: np.ndarray  # int8 code into models.events.EVENT_TYPES
    ts: np.ndarray  # int64 Unix milliseconds
    quantity: np.ndarray  # int32
    price: np.ndarray  # float32, NaN when unknown
    user_ids: list[str]
    item_ids: list[str]
    item_category: list[str | None]  # per item code (last seen, or from a catalog)
    item_price: np.ndarray  # float32 per item code, NaN when unknown
    item_in_stock: np.ndarray  # bool per item code (True when no catalog says otherwise)
    item_consumable: np.ndarray | None = None  # bool per item code, when a catalog says so

    def __len__(self) -> int:
        return int(self.user.shape[0])

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def fingerprint(self) -> str:
        """A content hash of the events, recorded in the manifest to tie a model to its data."""
        h = hashlib.sha256()
        for arr in (self.user, self.item, self.type, self.ts, self.quantity):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(str(self.n_users).encode())
        h.update(str(self.n_items).encode())
        return h.hexdigest()

    def select(self, mask: np.ndarray) -> EventLog:
        """The events where `mask` is true, with the same id tables (codes stay valid)."""
        return EventLog(
            user=self.user[mask],
            item=self.item[mask],
            type=self.type[mask],
            ts=self.ts[mask],
            quantity=self.quantity[mask],
            price=self.price[mask],
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            item_category=self.item_category,
            item_price=self.item_price,
            item_in_stock=self.item_in_stock,
            item_consumable=self.item_consumable,
        )
