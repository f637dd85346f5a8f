"""A session's ranking: the fold-in's and the item-item model's scores blended, a popularity prior.

One function, `rank_session`, called by the trainer's evaluation and by the server with the
same inputs, so offline metrics measure what is served:

    s = β·f/max f + (1 − β)·g/max g          f: ALS fold-in scores, g: item-item scores
    s = s·(1 + popularity)^−γ, then s/max s   γ: a mild popularity debias
    w = c/(c + n^p)                           n: distinct items in the session
    score = (1 − w)·s + w·popularity/max popularity

over the union of each source's best `depth` candidates (and the `depth` most popular items
while w > 0). β, γ, c and p are chosen by the trainer on validation users and recorded in the
manifest's `serving.blend`; a manifest without them (older formats) means β = 1, γ = 0, c = 0:
the fold-in alone, as served before. The prior's weight falls as the session grows, so an empty
session gets the popularity list and a long one the model; c is fitted so that 1- and 2-item
sessions are at least as good as popularity.

Pure numpy; the normalisation by each source's best candidate makes the blend invariant to a
model's score scale (a session's item-item scores grow with its length, ALS's with the fold-in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from models.itemitem import scores_at

# The server's recent-items cap before the trainer measured one (manifest serving.session_items).
DEFAULT_SESSION_ITEMS = 50


@dataclass(frozen=True)
class SessionBlend:
    foldin_weight: float = 1.0  # β; the item-item model gets 1 − β
    popularity_exponent: float = 0.0  # γ
    prior_c: float = 0.0  # c: the popularity prior's weight is c/(c + n^p)
    prior_power: float = 1.0  # p: 2 lets the prior fade fast once a session has a few items

    @property
    def itemitem_weight(self) -> float:
        return 1.0 - self.foldin_weight

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "itemitem_weight": self.itemitem_weight}

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> SessionBlend:
        """The blend a manifest records under serving.blend (defaults: the fold-in alone)."""
        raw = manifest.get("serving", {}).get("blend", {})
        return cls(**{k: float(raw[k]) for k in ("foldin_weight", "popularity_exponent", "prior_c",
                                                 "prior_power") if k in raw})


def session_items_cap(manifest: dict[str, Any]) -> int:
    """How many of a shopper's most recent items to fold in (manifest serving.session_items)."""
    return int(manifest.get("serving", {}).get("session_items", DEFAULT_SESSION_ITEMS))


def prior_weight(n_session_items: int, c: float, power: float = 1.0) -> float:
    """c/(c + n^power): 1 for an empty session (popularity alone), falling as it grows."""
    if n_session_items <= 0:
        return 1.0
    return c / (c + n_session_items ** power)


def _top(items: np.ndarray, scores: np.ndarray, depth: int) -> np.ndarray:
    if items.size <= depth:
        return items
    return items[np.argpartition(-scores, depth - 1)[:depth]]


def _distinct(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values: np.unique's result, ~5 µs instead of ~27 for a few hundred ints
    (its dispatch and hashing cost more than the sort at this size; once per request)."""
    a = np.sort(a)
    if a.size < 2:
        return a
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _unit_max(v: np.ndarray) -> np.ndarray:
    top = float(v.max()) if v.size else 0.0
    return v / top if top > 0 else v


def blend_scores(
    blend: SessionBlend,
    n_session_items: int,
    foldin: np.ndarray | None,
    itemitem: np.ndarray | None,
    popularity: np.ndarray,
    max_popularity: float,
) -> np.ndarray:
    """Blended scores of one candidate set: `foldin`/`itemitem` are each model's scores of the
    candidates (None when the model has no such part: the other then gets all the weight),
    `popularity` theirs, `max_popularity` the catalog's largest."""
    parts = [(w, s) for w, s in ((blend.foldin_weight, foldin), (blend.itemitem_weight, itemitem))
             if s is not None and w > 0]
    if not parts:  # e.g. the item-item model alone was chosen but this model has none
        parts = [(1.0, s) for s in (foldin, itemitem) if s is not None]
    total = sum(w for w, _ in parts)
    s = np.zeros(popularity.size, dtype=np.float64)
    for w, part in parts:
        s += (w / total) * _unit_max(np.asarray(part, dtype=np.float64))
    if blend.popularity_exponent:
        s = _unit_max(s * (1.0 + popularity.astype(np.float64)) ** -blend.popularity_exponent)
    w = prior_weight(n_session_items, blend.prior_c, blend.prior_power) if parts else 1.0
    if w > 0 and max_popularity > 0:
        s = (1.0 - w) * s + w * (popularity / max_popularity)
    return s


def rank_session(
    blend: SessionBlend,
    n_session_items: int,
    *,
    popularity: np.ndarray,
    popular: np.ndarray,
    depth: int,
    foldin_candidates: np.ndarray | None = None,
    foldin_scores: Callable[[np.ndarray], np.ndarray] | None = None,
    itemitem: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates of one session, best first, with their blended scores.

    `popularity` is the model's per-item popularity, `popular` the item rows by decreasing
    popularity. `foldin_candidates` are the ALS candidates (FAISS's top for the folded-in
    vector) and `foldin_scores(rows)` the inner products of any rows with that vector;
    `itemitem` is `models.itemitem.session_scores`'s result. Filters (the session's own items,
    stock, exclusions) are applied by the caller afterwards, to the returned order.
    """
    w = prior_weight(n_session_items, blend.prior_c, blend.prior_power)
    has_itemitem = itemitem is not None and itemitem[0].size > 0
    has_foldin = foldin_candidates is not None and foldin_scores is not None
    # A source with weight 0 is left out, unless it is the only one with anything to say (a
    # session whose items have no neighbours falls back to the fold-in, and vice versa).
    use_foldin = has_foldin and (blend.foldin_weight > 0 or not has_itemitem)
    use_itemitem = has_itemitem and (blend.itemitem_weight > 0 or not use_foldin)
    sources = []
    if use_foldin:
        sources.append(np.asarray(foldin_candidates, dtype=np.int64)[:depth])
    if use_itemitem:
        sources.append(_top(itemitem[0], itemitem[1], depth))
    if w > 0 or not sources:
        sources.append(np.asarray(popular[:depth], dtype=np.int64))
    candidates = _distinct(np.concatenate(sources))
    candidates = candidates[candidates >= 0]  # FAISS pads short answers with -1
    f = foldin_scores(candidates) if use_foldin else None
    g = scores_at(itemitem[0], itemitem[1], candidates) if use_itemitem else None
    max_popularity = float(popularity[popular[0]]) if len(popular) else 0.0
    scores = blend_scores(blend, n_session_items, f, g, popularity[candidates], max_popularity)
    order = np.lexsort((candidates, -scores))  # best first; ties by item row, deterministic
    return candidates[order], scores[order]
