"""The recommendation blend: live session + trained vectors → candidates → filters → re-rank.

Pure functions over a `ServingModel` and a `LiveSession` (no I/O, no aiohttp), so the whole
ranking is testable alone and the HTTP layer only fetches inputs and serialises outputs.

The fallback ladder: personalized (a known user's trained vector, blended with the live
session) → session (an anonymous shopper's live session folded in) → context (the items on the
page) → trending (live counters) → popular (the model's popularity, per category if asked).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

import numpy as np

from server.model_holder import ServingModel
from server.session_store import LiveSession

# Entries of ServingModel.memo (similar items) and .session_memo (a few seconds of traffic):
# bounded memory, each cleared when full.
MEMO_MAX = 50_000
SESSION_MEMO_MAX = 8_192
RUNGS = ("personalized", "session", "context", "trending", "popular")
_VERB = {"view": "viewed", "add_to_cart": "added to your cart", "purchase": "bought"}


@dataclass(frozen=True)
class BlendConfig:
    session_half_life_s: float = 3_600.0  # an item viewed an hour ago counts half
    user_weight: float = 0.5
    session_weight: float = 1.0
    context_weight: float = 1.0
    affinity_weight: float = 0.25  # live category affinity added to the normalised score
    # FAISS top-N before filters. The search's cost grows with N; 100 leaves room for the
    # filters and the diversity cap at the default k (10) and at max_k.
    candidates: int = 100
    max_category_share: float = 0.6  # diversity: at most this share of k from one category
    # A category placement scores every item of a category up to this size exactly (one
    # matrix-vector product: cheaper than the ANN search, and nothing in it is missed).
    exact_category_max: int = 10_000
    # How long a session's fold-in is reused while the session is unchanged (see _session_part).
    session_reuse_ms: int = 1_000


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
    n = math.sqrt(float(v @ v))
    return v / n if n > 1e-9 else None


def session_vector(model: ServingModel, live: LiveSession, now_ms: int, half_life_s: float):
    """Fold the live session in with the manifest's event weights, recency-decayed.
    Returns (unit vector or None, {item index: newest event type} of the folded items, newest
    first)."""
    weight_of: dict[int, float] = {}  # an item seen twice counts twice, as in training
    kind_of: dict[int, str] = {}
    index, weights = model.art.item_index, model.weights
    scale = -1.0 / (half_life_s * 1000)
    for item_id, typ, ts in live.items:
        i = index.get(item_id)
        weight = weights.get(typ, 0.0)
        if i is None or weight <= 0:
            continue
        weight_of[i] = weight_of.get(i, 0.0) + weight * 2.0 ** (max(now_ms - ts, 0) * scale)
        kind_of.setdefault(i, typ)
    if not weight_of:
        return None, kind_of
    n = len(weight_of)
    vec = model.foldin.solve(np.fromiter(weight_of, np.int64, n),
                             np.fromiter(weight_of.values(), np.float64, n))
    return _unit(vec), kind_of


def _session_part(model: ServingModel, q: Query, live: LiveSession, cfg: BlendConfig):
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
    hit = model.session_memo.get(key)
    if hit is not None and 0 <= q.now_ms - hit[0] <= cfg.session_reuse_ms:
        return hit[1], hit[2]
    vec, kinds = session_vector(model, live, q.now_ms, cfg.session_half_life_s)
    _remember(model.session_memo, SESSION_MEMO_MAX, key, (q.now_ms, vec, kinds))
    return vec, kinds


def _remember(memo: dict, limit: int, key, value) -> None:
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value


def query_vector(model: ServingModel, q: Query, live: LiveSession | None, cfg: BlendConfig):
    """The blended query vector, its rung, and the session items that explain it."""
    vec, rung, used = None, None, {}
    ui = model.art.user_index.get(q.user_id) if q.user_id else None
    if ui is not None and (u := _unit(model.user_factors[ui])) is not None:
        vec, rung = cfg.user_weight * u, "personalized"
    if live is not None and live.items:
        s, used = _session_part(model, q, live, cfg)
        if s is not None:
            vec = cfg.session_weight * s if vec is None else vec + cfg.session_weight * s
            rung = rung or "session"
    ctx = [i for i in (model.art.item_index.get(c) for c in q.context_items) if i is not None]
    # The sum, not the mean: the same unit vector, without numpy's mean (~10 µs).
    if ctx and (c := _unit(model.item_factors[ctx[0]] if len(ctx) == 1
                           else model.item_factors[ctx].sum(axis=0))) is not None:
        vec = cfg.context_weight * c if vec is None else vec + cfg.context_weight * c
        rung = rung or "context"
    if vec is None:
        return None, None, used
    return vec.astype(np.float32, copy=False), rung, used


def excluded_indices(model: ServingModel, q: Query, live: LiveSession | None,
                     also: list[int] | None = None) -> list[int]:
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
    if also:
        out += also
    return out


def servable(model: ServingModel, items: np.ndarray, excluded: list[int]) -> np.ndarray:
    """Mask of `items` that may be shown: in stock and not excluded. A boolean table lookup
    (np.isin sorts both arrays: ~50 µs here against ~3 µs)."""
    keep = model.available[items]
    if excluded:
        scratch = model.scratch
        scratch[excluded] = True
        try:
            keep &= ~scratch[items]
        finally:
            scratch[excluded] = False
    return keep


def _affinity_share(model: ServingModel, live: LiveSession | None) -> tuple[np.ndarray, int | None] | None:
    """The live category affinities as shares of their total, by category code (the last slot,
    items without a category, stays 0), and the code of the category holding at least half of
    them, if one does; None without affinities."""
    if live is None or not live.category_affinity:
        return None
    codes, values = [], []
    for cat, value in live.category_affinity.items():
        code = model.category_code.get(cat)
        if code is not None and value > 0:
            codes.append(code)
            values.append(value)
    total = sum(values)
    if total <= 0:
        return None
    share = np.zeros(len(model.categories) + 1, dtype=np.float32)
    for code, value in zip(codes, values, strict=True):
        share[code] = value / total
    lead = max(range(len(values)), key=values.__getitem__)
    return share, codes[lead] if values[lead] >= 0.5 * total else None


def _diverse_top(items: np.ndarray, scores: np.ndarray, cats: np.ndarray, k: int, share: float):
    """Best-first, at most ceil(share·k) items per category; tops up past the cap if short.
    Only the best 8·k candidates are considered (a whole category can be thousands).
    Returns the chosen items, their scores and their category codes, as lists."""
    best = min(items.size, max(8 * k, 64))
    # ndarray methods, not numpy's functions: their wrappers cost ~1 µs a call
    if items.size <= 256:  # the usual ANN candidates: one small sort beats partition + sort
        order = (-scores).argsort(kind="stable")[:best].tolist()
    else:
        head = (-scores).argpartition(best - 1)[:best]
        order = head[(-scores[head]).argsort(kind="stable")].tolist()
    cap = max(1, math.ceil(share * k))
    taken, counts, spill = [], {}, []
    cat_list = cats.tolist()
    for j in order:
        c = cat_list[j]
        n = counts.get(c, 0)
        if n < cap:
            counts[c] = n + 1
            taken.append(j)
            if len(taken) == k:
                break
        elif len(spill) < k:
            spill.append(j)
    taken += spill[: k - len(taken)]
    return items[taken].tolist(), scores[taken].tolist(), [cat_list[j] for j in taken]


def _candidates(model: ServingModel, vec: np.ndarray, q: Query, excluded: list[int],
                cfg: BlendConfig) -> tuple[np.ndarray, np.ndarray]:
    """(items, raw scores) to rank: the whole category when it is small enough to score
    exactly, otherwise the ANN top-N (filtered to the category if one is asked)."""
    code = model.category_code.get(q.category, -2) if q.category is not None else None
    if code is not None:
        pool = model.popular_in.get(code)
        if pool is None:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        if pool.size <= cfg.exact_category_max:
            return pool, model.category_scores(code, pool, vec)
    n = min(model.index_size, cfg.candidates + len(excluded))
    scores, items = model.search(vec, n)
    keep = items >= 0
    if code is not None:
        keep &= model.item_category[np.maximum(items, 0)] == code
    return items[keep], scores[keep]


def rank(model: ServingModel, q: Query, live: LiveSession | None, cfg: BlendConfig) -> Ranked | None:
    """The personalized/session/context rungs; None when there is no signal to rank with."""
    vec, rung, used = query_vector(model, q, live, cfg)
    if vec is None:
        return None
    excluded = excluded_indices(model, q, live)
    items, scores = _candidates(model, vec, q, excluded, cfg)
    keep = servable(model, items, excluded)
    items, scores = items[keep], scores[keep]
    if items.size == 0:
        return None
    scores = scores / max(float(np.abs(scores).max()), 1e-9)
    cats = model.item_category[items]
    affinity = _affinity_share(model, live)
    lead = None
    if affinity is not None:
        share, lead = affinity
        scores = scores + cfg.affinity_weight * share[cats]
    top, top_scores, top_cats = _diverse_top(items, scores, cats, q.k, cfg.max_category_share)
    return Ranked(top, top_scores, _reasons(model, top, top_cats, used, q, rung, lead), rung)


def _reasons(model: ServingModel, top: list[int], top_cats: list[int], used: dict[int, str], q: Query,
             rung: str, lead: int | None) -> list[str]:
    """Per item, why: the session item it is closest to, the page's item, or the category the
    shopper is mostly browsing (`lead`, from _affinity_share)."""
    ids = model.art.items.ids
    if used:
        src = list(itertools.islice(used, 20))  # the newest 20 session items
        y = model.item_factors
        best = (y[top] @ y[src].T).argmax(axis=1).tolist()
        out = [f"because you {_VERB.get(used[src[b]], 'viewed')} {ids[src[b]]}" for b in best]
    elif rung == "context" and q.context_items:
        out = [f"similar to {q.context_items[0]}"] * len(top)
    else:
        out = ["recommended for you"] * len(top)
    if lead is not None:
        name = f"because you're browsing {model.categories[lead]}"
        out = [name if c == lead else r for r, c in zip(out, top_cats, strict=True)]
    return out


def from_list(model: ServingModel, candidates: np.ndarray, scores: np.ndarray | None, q: Query,
              live: LiveSession | None, rung: str, also_excluded: list[int] | None = None) -> Ranked:
    """The trending and popular rungs: a ranked list, filtered like the personalized one."""
    keep = servable(model, candidates, excluded_indices(model, q, live, also_excluded))
    chosen = candidates[keep][: q.k]
    if scores is None:
        pop = model.art.popularity[chosen]
        scores_out = (pop / max(float(pop.max()), 1.0)).tolist() if chosen.size else []
    else:
        scores_out = scores[keep][: q.k].tolist()
    where = f" in {q.category}" if q.category else ""
    return Ranked(chosen.tolist(), scores_out, [f"{rung}{where}"] * len(chosen), rung)


def popular(model: ServingModel, q: Query, live: LiveSession | None,
            also_excluded: list[int] | None = None) -> Ranked:
    code = model.category_code.get(q.category) if q.category else None
    pool = model.popular_in.get(code, model.popular[:0]) if q.category else model.popular
    head = pool[: q.k * 4 + 64 + len(also_excluded or ())]
    return from_list(model, head, None, q, live, "popular", also_excluded)


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
    n = q.k - len(ranked.items)
    more = popular(model, replace(q, k=n), live, also_excluded=ranked.items)
    floor = min(ranked.scores, default=1.0)
    return Ranked(ranked.items + more.items,
                  ranked.scores + [floor * 0.5 * s for s in more.scores],
                  ranked.reasons + more.reasons, ranked.rung)


def similar(model: ServingModel, item_indices: list[int], k: int) -> tuple[list[int], list[float]]:
    """Items closest to the mean of the given items' vectors (themselves excluded). Depends on
    the model alone, so answers are memoised per model: product pages ask for the same items."""
    key = ("similar", tuple(item_indices), k)
    hit = model.memo.get(key)
    if hit is not None:
        return hit
    vec = _unit(model.item_factors[item_indices].sum(axis=0))
    if vec is None:
        return [], []
    n = min(model.index_size, k + len(item_indices) + 32)
    scores, items = model.search(vec, n)
    ok = items >= 0
    items, scores = items[ok], scores[ok]
    keep = servable(model, items, list(item_indices))
    result = items[keep][:k].tolist(), scores[keep][:k].tolist()
    _remember(model.memo, MEMO_MAX, key, result)
    return result
