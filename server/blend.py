"""The recommendation blend: live session + trained vectors → candidates → filters → re-rank.

Pure functions over a `ServingModel` and a `LiveSession` (no I/O, no aiohttp), so the whole
ranking is testable alone and the HTTP layer only fetches inputs and serialises outputs.

The fallback ladder: personalized (a known user's trained vector, blended with the live
session) → session (an anonymous shopper's live session folded in) → context (the items on the
page) → trending (live counters) → popular (the model's popularity, per category if asked).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from models.foldin import fold_in
from server.model_holder import ServingModel
from server.session_store import LiveSession

RUNGS = ("personalized", "session", "context", "trending", "popular")
_VERB = {"view": "viewed", "add_to_cart": "added to your cart", "purchase": "bought"}


@dataclass(frozen=True)
class BlendConfig:
    session_half_life_s: float = 3_600.0  # an item viewed an hour ago counts half
    user_weight: float = 0.5
    session_weight: float = 1.0
    context_weight: float = 1.0
    affinity_weight: float = 0.5  # live category affinity added to the normalised score
    candidates: int = 200  # FAISS top-N before filters
    max_category_share: float = 0.6  # diversity: at most this share of k from one category


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


@dataclass(slots=True)
class Ranked:
    items: list[int]
    scores: list[float]
    reasons: list[str]
    rung: str


def _unit(v: np.ndarray) -> np.ndarray | None:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else None


def session_vector(model: ServingModel, live: LiveSession, now_ms: int, half_life_s: float):
    """Fold the live session in with the manifest's event weights, recency-decayed.
    Returns (vector or None, [(item index, event type)] of the folded items, newest first)."""
    idx, w, used = [], [], []
    index = model.art.item_index
    for item_id, typ, ts in live.items:
        i = index.get(item_id)
        weight = model.weights.get(typ, 0.0)
        if i is None or weight <= 0:
            continue
        idx.append(i)
        w.append(weight * 2.0 ** (-max(now_ms - ts, 0) / (half_life_s * 1000)))
        used.append((i, typ))
    if not idx:
        return None, used
    p = model.art.params
    vec = fold_in(model.art.item_factors, model.art.gram, np.array(idx), np.array(w),
                  regularization=p["regularization"], alpha=p["alpha"])
    return _unit(vec), used


def query_vector(model: ServingModel, q: Query, live: LiveSession | None, cfg: BlendConfig):
    """The blended query vector, its rung, and the session items that explain it."""
    parts, rung, used = [], None, []
    ui = model.art.user_index.get(q.user_id) if q.user_id else None
    if ui is not None and (u := _unit(np.asarray(model.art.user_factors[ui]))) is not None:
        parts.append(cfg.user_weight * u)
        rung = "personalized"
    if live is not None and live.items:
        s, used = session_vector(model, live, q.now_ms, cfg.session_half_life_s)
        if s is not None:
            parts.append(cfg.session_weight * s)
            rung = rung or "session"
    ctx = [i for i in (model.art.item_index.get(c) for c in q.context_items) if i is not None]
    if ctx and (c := _unit(np.asarray(model.art.item_factors[ctx]).mean(axis=0))) is not None:
        parts.append(cfg.context_weight * c)
        rung = rung or "context"
    if not parts:
        return None, None, used
    return np.sum(parts, axis=0).astype(np.float32), rung, used


def excluded_indices(model: ServingModel, q: Query, live: LiveSession | None) -> np.ndarray:
    """Items never to show: context items, explicit exclusions, what the shopper saw in this
    session (as the offline evaluation excludes the folded-in items), returned items, and
    purchased items unless they are consumables (re-bought on a cycle)."""
    index = model.art.item_index
    out = [index[x] for x in (*q.context_items, *q.exclude) if x in index]
    if live is not None:
        out += [index[x[0]] for x in live.items if x[0] in index and x[1] != "purchase"]
        out += [index[x] for x in live.returned if x in index]
        out += [i for i in (index.get(x) for x in live.purchased)
                if i is not None and not model.consumable[i]]
    return np.array(out, dtype=np.int64)


def _affinity_share(model: ServingModel, live: LiveSession | None) -> np.ndarray | None:
    if live is None or not live.category_affinity:
        return None
    share = np.zeros(len(model.categories) + 1, dtype=np.float32)  # last slot: unknown category
    for cat, value in live.category_affinity.items():
        code = model.category_code.get(cat)
        if code is not None:
            share[code] = value
    total = share.sum()
    return share / total if total > 0 else None


def _diverse_top(items: np.ndarray, scores: np.ndarray, cats: np.ndarray, k: int, share: float):
    """Best-first, at most ceil(share·k) items per category; tops up past the cap if short."""
    order = np.argsort(-scores, kind="stable")
    cap = max(1, math.ceil(share * k))
    taken, counts, spill = [], {}, []
    for j in order:
        c = int(cats[j])
        if counts.get(c, 0) < cap:
            counts[c] = counts.get(c, 0) + 1
            taken.append(j)
            if len(taken) == k:
                break
        else:
            spill.append(j)
    taken += spill[: k - len(taken)]
    return items[taken], scores[taken]


def rank(model: ServingModel, q: Query, live: LiveSession | None, cfg: BlendConfig) -> Ranked | None:
    """The personalized/session/context rungs; None when there is no signal to rank with."""
    vec, rung, used = query_vector(model, q, live, cfg)
    if vec is None:
        return None
    excluded = excluded_indices(model, q, live)
    n = min(model.art.index.ntotal, cfg.candidates + excluded.size)
    scores, items = model.art.index.search(vec[None, :], n)
    scores, items = scores[0], items[0]
    keep = (items >= 0)
    items, scores = items[keep], scores[keep]
    keep = model.available[items] & ~np.isin(items, excluded)
    if q.category is not None:
        keep &= model.item_category[items] == model.category_code.get(q.category, -2)
    items, scores = items[keep], scores[keep]
    if items.size == 0:
        return None
    scores = scores / max(float(np.abs(scores).max()), 1e-9)
    cats = model.item_category[items]
    share = _affinity_share(model, live)
    if share is not None:
        scores = scores + cfg.affinity_weight * share[cats]
    top, top_scores = _diverse_top(items, scores, cats, q.k, cfg.max_category_share)
    return Ranked(top.tolist(), top_scores.tolist(), _reasons(model, top, used, q, rung, share), rung)


def _reasons(model: ServingModel, top: np.ndarray, used, q: Query, rung: str, share) -> list[str]:
    ids = model.art.items.ids
    if used:
        y = np.asarray(model.art.item_factors)
        session_idx = np.array([i for i, _ in used[:20]])
        best = (y[top] @ y[session_idx].T).argmax(axis=1)
        out = [f"because you {_VERB.get(used[b][1], 'viewed')} {ids[used[b][0]]}" for b in best]
    elif rung == "context" and q.context_items:
        out = [f"similar to {q.context_items[0]}"] * len(top)
    else:
        out = ["recommended for you"] * len(top)
    if share is not None:
        top_cat = int(np.argmax(share[:-1]))
        for j, i in enumerate(top):
            if model.item_category[i] == top_cat and share[top_cat] >= 0.5:
                out[j] = f"because you're browsing {model.categories[top_cat]}"
    return out


def from_list(model: ServingModel, candidates: np.ndarray, scores: np.ndarray | None, q: Query,
              live: LiveSession | None, rung: str) -> Ranked:
    """The trending and popular rungs: a ranked list, filtered like the personalized one."""
    excluded = excluded_indices(model, q, live)
    keep = model.available[candidates] & ~np.isin(candidates, excluded)
    chosen = candidates[keep][: q.k]
    if scores is None:
        pop = model.art.popularity[chosen]
        scores_out = (pop / max(float(pop.max()), 1.0)).tolist() if chosen.size else []
    else:
        scores_out = scores[keep][: q.k].tolist()
    where = f" in {q.category}" if q.category else ""
    return Ranked(chosen.tolist(), scores_out, [f"{rung}{where}"] * len(chosen), rung)


def popular(model: ServingModel, q: Query, live: LiveSession | None) -> Ranked:
    code = model.category_code.get(q.category) if q.category else None
    pool = model.popular_in.get(code, model.popular[:0]) if q.category else model.popular
    head = pool[: q.k * 4 + 64]
    return from_list(model, head, None, q, live, "popular")


def map_trending(model: ServingModel, rows: list[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Live trending rows (item id, score) → model item indices and scores normalised to 1."""
    index = model.art.item_index
    pairs = [(index[i], s) for i, s in rows if i in index]
    items = np.array([p[0] for p in pairs], dtype=np.int64)
    scores = np.array([p[1] for p in pairs], dtype=np.float64)
    return items, scores / max(float(scores.max()), 1e-9) if scores.size else scores


def trending(model: ServingModel, items: np.ndarray, scores: np.ndarray, q: Query,
             live: LiveSession | None) -> Ranked | None:
    """The trending rung; None when too few items remain after the filters."""
    if items.size == 0:
        return None
    ranked = from_list(model, items, scores, q, live, "trending")
    return ranked if len(ranked.items) >= max(1, q.k // 2) else None


def top_up(model: ServingModel, ranked: Ranked, q: Query, live: LiveSession | None) -> Ranked:
    """Fill a short personalized list (e.g. few candidates in the asked category) with popular
    items, so a carousel is never half empty; the filled items say they are popular."""
    if len(ranked.items) >= q.k:
        return ranked
    more = popular(model, replace(q, k=q.k + len(ranked.items),
                                  exclude=q.exclude | {model.art.items.ids[i] for i in ranked.items}), live)
    n = q.k - len(ranked.items)
    floor = min(ranked.scores, default=1.0)
    return Ranked(ranked.items + more.items[:n],
                  ranked.scores + [floor * 0.5 * s for s in more.scores[:n]],
                  ranked.reasons + more.reasons[:n], ranked.rung)


def similar(model: ServingModel, item_indices: list[int], k: int) -> tuple[list[int], list[float]]:
    """Items closest to the mean of the given items' vectors (themselves excluded)."""
    vec = _unit(np.asarray(model.art.item_factors[item_indices]).mean(axis=0))
    if vec is None:
        return [], []
    n = min(model.art.index.ntotal, k + len(item_indices) + 32)
    scores, items = model.art.index.search(vec[None, :].astype(np.float32), n)
    keep = (items[0] >= 0) & ~np.isin(items[0], item_indices)
    items, scores = items[0][keep], scores[0][keep]
    keep = model.available[items]
    return items[keep][:k].tolist(), scores[keep][:k].tolist()
