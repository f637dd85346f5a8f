"""Event log → user × item confidence matrix, with the per-type weights and time decay.

The weights are the contract with the server: the trainer records exactly the ones used here
in the manifest, and the server folds live events in with them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.events import EventType
from training.eventlog import TYPE_CODE, EventLog

_PURCHASE = TYPE_CODE[EventType.PURCHASE.value]
_RETURN = TYPE_CODE[EventType.RETURN.value]


def type_weight_table(weights: dict[str, float]) -> np.ndarray:
    """Weights indexed by event-type code (unknown names are rejected, missing ones are 0)."""
    unknown = set(weights) - set(TYPE_CODE)
    if unknown:
        raise ValueError(f"unknown event types in weights: {', '.join(sorted(unknown))}")
    table = np.zeros(len(TYPE_CODE), dtype=np.float32)
    for name, w in weights.items():
        table[TYPE_CODE[name]] = w
    return table


def confidence_matrix(
    log: EventLog,
    weights: dict[str, float],
    *,
    half_life_days: float | None = None,
    now_ms: int | None = None,
) -> sp.csr_matrix:
    """Sum of event weights per (user, item), decayed by age; returned pairs are removed.

    A pair is dropped when its returns are at least its purchases (the shopper sent back what
    they bought: that is not a positive, even if they viewed it a lot). With `half_life_days`,
    an event's weight halves every that many days before `now_ms` (default: the newest event).
    """
    has_item = log.item >= 0
    user, item, typ = log.user[has_item], log.item[has_item], log.type[has_item]
    w = type_weight_table(weights)[typ].astype(np.float32)
    if half_life_days:
        ts = log.ts[has_item]
        now = now_ms if now_ms is not None else (int(ts.max()) if ts.size else 0)
        age_days = np.maximum(now - ts, 0) / 86_400_000.0
        w = w * np.exp2(-age_days / half_life_days).astype(np.float32)
    shape = (log.n_users, log.n_items)
    m = sp.csr_matrix((w, (user, item)), shape=shape, dtype=np.float32)
    qty = log.quantity[has_item].astype(np.float32)
    is_p, is_r = typ == _PURCHASE, typ == _RETURN
    if is_r.any():
        bought = sp.csr_matrix((qty[is_p], (user[is_p], item[is_p])), shape=shape)
        returned = sp.csr_matrix((qty[is_r], (user[is_r], item[is_r])), shape=shape).tocoo()
        net = np.asarray(bought[returned.row, returned.col]).ravel() - returned.data
        gone = net <= 0
        if gone.any():
            drop = sp.csr_matrix(
                (np.ones(int(gone.sum()), dtype=np.float32), (returned.row[gone], returned.col[gone])),
                shape=shape,
            )
            m = m - m.multiply(drop)
    m.eliminate_zeros()
    m.sum_duplicates()
    return m.tocsr()
