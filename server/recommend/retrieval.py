"""Retrieval: the query vector (a known user's trained vector, the live session folded in, the
page's items) and the candidates it finds (the index, or a whole small category scored
exactly). Pure functions over the ServingModel, its Caches and the shopper's LiveSession."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from server.catalog.view import ItemsView
from server.recommend.caches import SIMILAR_MAX, Caches, remember
from server.recommend.filtered import allowed_candidates
from server.recommend.model import ServingModel
from server.settings import RecommendSettings
from server.store.records import LiveSession


@dataclass(slots=True)
class Query:
    placement: str
    user_id: str | None
    session_id: str | None
    k: int
    now_ms: int
    context_items: list[str] = field(default_factory=list)
    category: str | None = None
    exclude: frozenset[str] = frozenset()


def unit(v: np.ndarray) -> np.ndarray | None:
    n = math.sqrt(float(v @ v))
    return v / n if n > 1e-9 else None


@dataclass(slots=True)
class SessionFold:
    """A live session folded in: the unit vector (None: nothing known to fold in), the newest
    event type per item folded in (newest first, for the reasons), and the distinct item rows
    with their summed, recency-decayed weights (the item-item model's input)."""
    vec: np.ndarray | None
    kinds: dict[int, str]
    items: np.ndarray
    weights: np.ndarray
    itemitem: tuple[np.ndarray, np.ndarray] | None = None  # memo: the session's item-item scores


def session_vector(model: ServingModel, live: LiveSession, now_ms: int, half_life_s: float) -> SessionFold:
    """Fold the live session's most recent `model.session_items` events in with the manifest's
    event weights, recency-decayed."""
    weight_of: dict[int, float] = {}  # an item seen twice counts twice, as in training
    kind_of: dict[int, str] = {}
    index, weights = model.art.item_index, model.weights
    scale = -1.0 / (half_life_s * 1000)
    for item_id, typ, ts in live.items[:model.session_items]:
        i = index.get(item_id)
        weight = weights.get(typ, 0.0)
        if i is None or weight <= 0:
            continue
        weight_of[i] = weight_of.get(i, 0.0) + weight * 2.0 ** (max(now_ms - ts, 0) * scale)
        kind_of.setdefault(i, typ)
    n = len(weight_of)
    items = np.fromiter(weight_of, np.int64, n)
    values = np.fromiter(weight_of.values(), np.float64, n)
    if not n:
        return SessionFold(None, kind_of, items, values)
    return SessionFold(unit(model.foldin.solve(items, values)), kind_of, items, values)


def _session_part(model: ServingModel, caches: Caches, q: Query, live: LiveSession,
                  cfg: RecommendSettings) -> SessionFold:
    """`session_vector`, reused while the session is unchanged for `session_reuse_ms`: the
    placements of one page view (home, product, cart widgets) ask within milliseconds of each
    other, and the fold-in is over a third of their ranking. The recency decay moves the weights
    by 2^(-reuse/half-life) meanwhile (0.02% for 1 s at the default hour): the same ranking.
    The key is the shopper and the newest and oldest recent events with their count; a new
    event changes the newest (the recent list is newest first)."""
    if cfg.session_reuse_ms <= 0:
        return session_vector(model, live, q.now_ms, cfg.session_half_life_s)
    items = live.items
    key = (q.user_id, q.session_id, items[0], items[-1], len(items))
    hit = caches.sessions.get(key)
    if hit is not None and 0 <= q.now_ms - hit[0] <= cfg.session_reuse_ms:
        return hit[1]
    fold = session_vector(model, live, q.now_ms, cfg.session_half_life_s)
    remember(caches.sessions, cfg.session_reuse_entries, key, (q.now_ms, fold))
    return fold


def query_vector(model: ServingModel, caches: Caches, q: Query, live: LiveSession | None,
                 cfg: RecommendSettings):
    """The blended query vector, its rung, the session items that explain it, and the folded
    session (None without one)."""
    vec, rung, used, fold = None, None, {}, None
    ui = model.art.user_index.get(q.user_id) if q.user_id else None
    if ui is not None and (u := unit(model.user_factors[ui])) is not None:
        vec, rung = cfg.user_weight * u, "personalized"
    if live is not None and live.items:
        fold = _session_part(model, caches, q, live, cfg)
        used = fold.kinds
        if (s := fold.vec) is not None:
            vec = cfg.session_weight * s if vec is None else vec + cfg.session_weight * s
            rung = rung or "session"
    ctx = [i for i in (model.art.item_index.get(c) for c in q.context_items) if i is not None]
    # The sum, not the mean: the same unit vector, without numpy's mean (~10 µs).
    if ctx and (c := unit(model.item_factors[ctx[0]] if len(ctx) == 1
                          else model.item_factors[ctx].sum(axis=0))) is not None:
        vec = cfg.context_weight * c if vec is None else vec + cfg.context_weight * c
        rung = rung or "context"
    if vec is None:
        return None, None, used, fold
    return vec.astype(np.float32, copy=False), rung, used, fold


def candidates(model: ServingModel, caches: Caches, view: ItemsView, vec: np.ndarray, q: Query,
               n_excluded: int, cfg: RecommendSettings, rules=None) -> tuple[np.ndarray, np.ndarray]:
    """(items, raw scores) to rank: the whole category when it is small enough to score
    exactly; the items include-only rules allow (filtered.py) when some are in scope (`rules`:
    the merchandising rules in scope); otherwise the index's top-N (filtered to the category if
    one is asked)."""
    code = view.category_code.get(q.category, -2) if q.category is not None else None
    if code is not None:
        pool = view.pool(code)
        if pool is None:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        if pool.size <= cfg.exact_category_max:
            return pool, caches.category_scores(model, (code, view.pools_version), pool, vec)
    allowed = rules.allowed(cfg.filter_scan_max) if rules is not None else None
    if allowed is not None:
        shown = view.visible if rules.show_out_of_stock else view.available
        return allowed_candidates(model, allowed, vec, cfg.candidates + n_excluded, shown, view.category,
                                  code if code is not None and code >= 0 else None)
    n = min(model.index_size, cfg.candidates + n_excluded)
    scores, items = model.search(vec, n)
    keep = items >= 0
    if code is not None:
        keep &= view.category[np.maximum(items, 0)] == code
    return items[keep], scores[keep]


def similar_candidates(model: ServingModel, caches: Caches, item_indices: list[int],
                       k: int) -> tuple[np.ndarray, np.ndarray]:
    """Index candidates nearest the sum of the given items' vectors, themselves excluded later
    by the finishing stage. Memoised per model: product pages ask for the same items."""
    n = min(model.index_size, k + len(item_indices) + 32)
    key = (tuple(item_indices), n)
    hit = caches.similar.get(key)
    if hit is not None:
        return hit
    vec = unit(model.item_factors[item_indices].sum(axis=0))
    if vec is None:
        result = np.empty(0, np.int64), np.empty(0, np.float32)
    else:
        scores, items = model.search(vec.astype(np.float32, copy=False), n)
        ok = items >= 0
        result = items[ok], scores[ok]
    remember(caches.similar, SIMILAR_MAX, key, result)
    return result
