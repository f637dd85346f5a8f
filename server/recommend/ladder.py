"""`recommend()`: the fallback ladder, in one domain function (no aiohttp, no I/O).

personalized (a known user's trained vector, blended with the live session) → session (an
anonymous shopper's live session folded in) → context (the items on the page) → trending (live
counters, from the in-process snapshot) → popular (the model's popularity, per category if
asked). The first rung with enough servable items answers; a short answer is topped up with
popular items, which say so. Every list goes through the same finishing stage (finish.py).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from server.recommend.caches import Caches
from server.recommend.finish import Explain, Ranked, excluded_indices, finish
from server.recommend.model import ServingModel
from server.recommend.retrieval import Query, candidates, query_vector, similar_candidates
from server.settings import RecommendSettings
from server.store.records import LiveSession

RUNGS = ("personalized", "session", "context", "trending", "popular")


class TrendingSource(Protocol):
    def get(self, model: ServingModel, category: str | None) -> tuple[np.ndarray, np.ndarray] | None:
        """Live trending (item indices, scores), best first; None when not known now."""


def recommend(model: ServingModel, caches: Caches, q: Query, live: LiveSession | None,
              trending: TrendingSource | None, cfg: RecommendSettings) -> Ranked:
    excluded = excluded_indices(model, q, live)

    def done(items: np.ndarray, scores: np.ndarray, explain: Explain, k: int = q.k,
             also: list[int] | None = None) -> Ranked:
        return finish(model, caches, items, scores, k, live, excluded + also if also else excluded,
                      explain, affinity_weight=cfg.affinity_weight, category_share=cfg.max_category_share)

    ranked = None
    vec, rung, used = query_vector(model, caches, q, live, cfg)
    if vec is not None:
        items, scores = candidates(model, caches, vec, q, len(excluded), cfg)
        context = next((c for c in q.context_items if c in model.art.item_index), None)
        ranked = done(items, scores, Explain(rung, used=used, context=context)) if items.size else None
    if not (ranked and ranked.items) and trending is not None:
        live_list = trending.get(model, q.category)
        if live_list is not None and live_list[0].size:
            ranked = done(*live_list, Explain("trending", label=_label("trending", q.category)))
            # A couple of live items is not a list: below half of k, the popular rung answers.
            if len(ranked.items) < max(1, q.k // 2):
                ranked = None
    if not (ranked and ranked.items):
        ranked = done(*_popular(model, q, q.k, len(excluded)),
                      Explain("popular", label=_label("popular", q.category)))
    if len(ranked.items) < q.k:
        ranked = _top_up(model, q, ranked, done, len(excluded))
    return ranked


def _label(rung: str, category: str | None) -> str:
    return f"{rung} in {category}" if category else rung


def _popular(model: ServingModel, q: Query, k: int, n_excluded: int) -> tuple[np.ndarray, np.ndarray]:
    """The head of the popularity list (in the category, if asked): enough to survive the
    filters and the diversity cap."""
    code = model.category_code.get(q.category) if q.category else None
    pool = model.popular_in.get(code, model.popular[:0]) if q.category else model.popular
    head = pool[: k * 4 + 64 + n_excluded]
    return head, model.art.popularity[head]


def _top_up(model: ServingModel, q: Query, ranked: Ranked, done, n_excluded: int) -> Ranked:
    """Fill a short list (few candidates in the asked category, a quiet trending hour) with
    popular items, so a carousel is never half empty; the filled items say they are popular
    and score below the list they extend."""
    n = q.k - len(ranked.items)
    more = done(*_popular(model, q, n, n_excluded + len(ranked.items)),
                Explain("popular", label=_label("popular", q.category)), k=n, also=ranked.items)
    floor = min(ranked.scores, default=1.0)
    return Ranked(ranked.items + more.items, ranked.scores + [floor * 0.5 * s for s in more.scores],
                  ranked.reasons + more.reasons, ranked.rung)


def similar(model: ServingModel, caches: Caches, item_indices: list[int], label: str, k: int,
            exclude: list[int], cfg: RecommendSettings) -> Ranked:
    """Items nearest the given items (a product, a whole cart), through the same finishing
    stage: a live stock change or a rule applies here as everywhere. No diversity cap: similar
    to a shoe means shoes."""
    items, scores = similar_candidates(model, caches, item_indices, k + len(exclude))
    return finish(model, caches, items, scores, k, None, [*item_indices, *exclude],
                  Explain("context", label=f"similar to {label}"),
                  affinity_weight=0.0, category_share=1.0)
