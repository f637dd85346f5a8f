"""Sessions for offline evaluation: users split into folded-in items and targets, then scored.

Strong generalization's protocol (training/evaluate.py): each evaluated user is absent from
training; a share of their positives, in random order, is the "session" folded in, the rest are
the targets. Short sessions keep the first n items of that session (the same targets); session
length curves keep the n most recent ones (by each item's last event), which is what the server
folds in from a shopper's recent list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from training.eventlog import EventLog


@dataclass
class Cases:
    users: np.ndarray
    items: list[np.ndarray]  # folded-in items, in random order
    weights: list[np.ndarray]  # their confidence weights
    targets: list[np.ndarray]
    recency: list[np.ndarray] | None = None  # per session: positions of `items`, newest first

    def head(self, n: int) -> Cases:
        """The first n sessions."""
        return Cases(self.users[:n], self.items[:n], self.weights[:n], self.targets[:n],
                     self.recency[:n] if self.recency is not None else None)

    def first(self, n: int) -> Cases:
        """The first n items of each session (sessions shorter than n stay whole)."""
        return Cases(self.users, [i[:n] for i in self.items], [w[:n] for w in self.weights], self.targets)

    def most_recent(self, n: int) -> Cases:
        """The n most recent items of each session (needs `recency`)."""
        if self.recency is None:
            raise ValueError("no event times to order the sessions by")
        keep = [r[:n] for r in self.recency]
        return Cases(self.users, [i[k] for i, k in zip(self.items, keep, strict=True)],
                     [w[k] for w, k in zip(self.weights, keep, strict=True)], self.targets)


def split_cases(matrix: sp.csr_matrix, users: np.ndarray, fraction: float, rng: np.random.Generator,
                last_ms: np.ndarray | None = None) -> Cases:
    """Each user's positives in random order, the first `fraction` folded in, the rest targets.
    `last_ms` (aligned with matrix.data) orders each session newest first."""
    items, weights, targets, recency = [], [], [], []
    for u in users:
        start, end = matrix.indptr[u], matrix.indptr[u + 1]
        order = rng.permutation(end - start)
        n_in = int(round(fraction * order.size))
        row_items, row_weights = matrix.indices[start:end], matrix.data[start:end]
        items.append(row_items[order[:n_in]])
        weights.append(row_weights[order[:n_in]])
        targets.append(row_items[order[n_in:]])
        if last_ms is not None:
            recency.append(np.argsort(-last_ms[start:end][order[:n_in]], kind="stable"))
    return Cases(np.asarray(users), items, weights, targets, recency if last_ms is not None else None)


def last_event_ms(log: EventLog, matrix: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
    """Each (user, item) entry's newest event time, aligned with `matrix.data` (canonical CSR).
    Row r of `matrix` is user `users[r]` (sorted codes; default: row r is user r)."""
    has_item = log.item >= 0
    user, item, ts = log.user[has_item].astype(np.int64), log.item[has_item], log.ts[has_item]
    if users is not None:
        keep = np.isin(user, users)
        user, item, ts = np.searchsorted(users, user[keep]), item[keep], ts[keep]
    n_items = matrix.shape[1]
    keys = user * n_items + item
    order = np.lexsort((ts, keys))
    keys, ts = keys[order], ts[order]
    last = np.r_[keys[1:] != keys[:-1], True]  # the newest event of each key comes last
    keys, ts = keys[last], ts[last]
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    wanted = rows * n_items + matrix.indices
    if keys.size == 0:
        return np.zeros(wanted.size, np.int64)
    pos = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
    return np.where(keys[pos] == wanted, ts[pos], 0)
