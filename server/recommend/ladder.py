"""`recommend()`: the fallback ladder, in one domain function (no aiohttp, no I/O).

personalized (a known user's trained vector, blended with the live session) → session (an
anonymous shopper's live session folded in) → context (the items on the page) → trending (live
counters, from the in-process snapshot) → popular (the model's popularity, per category if
asked). The first rung with enough servable items answers; a short answer is topped up with
popular items, which say so. Every list goes through the same finishing stage (finish.py), and
the merchandising pins are placed once on the whole answer.

Items the live catalog added after training have no factors: they answer through trending,
category popularity and pins; a product page showing one uses its category for those rungs.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from models.ranking import prior_weight
from server.catalog.view import ItemsView
from server.merchandising.applied import Applied
from server.recommend.blend import blended_candidates, similar_blended
from server.recommend.caches import Caches
from server.recommend.explain import Trace
from server.recommend.filtered import allowed_candidates
from server.recommend.finish import Explain, Ranked, Stage, excluded_indices, finish, place_pins
from server.recommend.model import ServingModel
from server.recommend.retrieval import Query, candidates, query_vector, similar_candidates, unit
from server.settings import RecommendSettings
from server.store.records import LiveSession

RUNGS = ("personalized", "session", "context", "trending", "popular")


class TrendingSource(Protocol):
    def get(self, view: ItemsView, category: str | None) -> tuple[np.ndarray, np.ndarray] | None:
        """Live trending (item rows of the view, scores), best first; None when not known now."""


def recommend(model: ServingModel, caches: Caches, q: Query, live: LiveSession | None,
              trending: TrendingSource | None, cfg: RecommendSettings, *, view: ItemsView | None = None,
              rules: Applied | None = None, trace: Trace | None = None) -> Ranked:
    """The answer for one request. `view`: the live catalog's view of the model (the model's own
    item metadata when None); `rules`: the merchandising rules in scope (none when None)."""
    view = view if view is not None else caches.base_view(model)
    stage = Stage(model, caches, view, rules if rules is not None else Applied(), live,
                  excluded_indices(view, q, live), cfg.affinity_weight, cfg.max_category_share, trace)
    category = q.category or _context_category(view, q)

    def done(items: np.ndarray, scores: np.ndarray, explain: Explain, k: int = q.k,
             also: list[int] = ()) -> Ranked:
        return finish(stage, items, scores, k, explain, also=also, pins=False)

    ranked = None
    vec, rung, used, fold = query_vector(model, caches, q, live, cfg)
    if vec is not None:
        items, scores = candidates(model, caches, view, vec, q, len(stage.excluded), cfg, stage.rules)
        if model.blended and rung in ("session", "context"):
            ctx = [i for i in map(model.art.item_index.get, q.context_items) if i is not None]
            code = view.category_code.get(q.category, -2) if q.category is not None else None
            items, scores = blended_candidates(model, view, vec, items, scores, fold, ctx, code,
                                               cfg.candidates + len(stage.excluded))
            if fold is not None and fold.items.size:
                # The live category affinity trusts a short session as much as the model does:
                # the popularity prior's weight (fitted on validation) is the share of the
                # ranking n items have not earned. At full weight the one category of a 1-event
                # session outranked the prior's best sellers (ml-latest-small: Recall@20 0.133
                # vs 0.146 without the re-rank, benchmarks/results/relevance_http.md).
                b, n = model.blend, fold.items.size + len(ctx)
                stage.affinity_weight *= 1.0 - prior_weight(n, b.prior_c, b.prior_power)
        context = next((c for c in q.context_items if c in model.art.item_index), None)
        ranked = done(items, scores, Explain(rung, used=used, context=context)) if items.size else None
        stage.affinity_weight = cfg.affinity_weight  # the fallbacks' own re-rank
    if not (ranked and ranked.items) and trending is not None:
        live_list = trending.get(view, category)
        if live_list is not None and live_list[0].size:
            ranked = done(*live_list, Explain("trending", label=_label("trending", category)))
            # A couple of live items is not a list: below half of k, the popular rung answers.
            if len(ranked.items) < max(1, q.k // 2):
                ranked = None
    if not (ranked and ranked.items):
        ranked = done(*_popular(view, category, q.k, len(stage.excluded)),
                      Explain("popular", label=_label("popular", category)))
    if len(ranked.items) < q.k:
        ranked = _top_up(view, q.k, category, ranked, done, len(stage.excluded))
    return place_pins(stage, ranked, q.k)


def _context_category(view: ItemsView, q: Query) -> str | None:
    """The category of the page's item when the model never saw it (a new catalog item): the
    trending and popular rungs then stay near it instead of showing the whole store's."""
    if not q.context_items or any(c in view.model.art.item_index for c in q.context_items):
        return None
    for item_id in q.context_items:
        i = view.index_of(item_id)
        if i is not None and (name := view.category_of(i)) is not None:
            return name
    return None


def _label(rung: str, category: str | None) -> str:
    return f"{rung} in {category}" if category else rung


def _popular(view: ItemsView, category: str | None, k: int, n_excluded: int) -> tuple[np.ndarray, np.ndarray]:
    """The head of the popularity list (in the category, if asked): enough to survive the
    filters and the diversity cap. A category short of trained items ends with the catalog's
    new items in it (no popularity yet: score 0), so a new collection's page is not empty."""
    model = view.model
    want = k * 4 + 64 + n_excluded
    if category is not None:
        code = view.category_code.get(category)
        pool = view.pool(code) if code is not None else None
        if pool is None:
            pool = model.popular[:0]
        if pool.size < want and code is not None and view.new_ids:
            new = np.flatnonzero(view.category[view.n_model:view.n_items] == code) + view.n_model
            head = np.concatenate([pool, new[: want - pool.size]])
            scores = np.zeros(head.size, np.float32)
            scores[: pool.size] = model.art.popularity[pool]
            return head, scores
    else:
        pool = model.popular
    head = pool[:want]
    return head, model.art.popularity[head]


def _top_up(view: ItemsView, k: int, category: str | None, ranked: Ranked, done, n_excluded: int) -> Ranked:
    """Fill a short list (few candidates in the asked category, a quiet trending hour) with
    popular items, so a carousel is never half empty; the filled items say they are popular
    and score below the list they extend."""
    n = k - len(ranked.items)
    more = done(*_popular(view, category, n, n_excluded + len(ranked.items)),
                Explain("popular", label=_label("popular", category)), k=n, also=ranked.items)
    floor = min(ranked.scores, default=1.0)
    return Ranked(ranked.items + more.items, ranked.scores + [floor * 0.5 * s for s in more.scores],
                  ranked.reasons + more.reasons, ranked.rung)


def similar(model: ServingModel, caches: Caches, item_indices: list[int], label: str, k: int,
            exclude: list[int], cfg: RecommendSettings, *, view: ItemsView | None = None,
            rules: Applied | None = None, trending: TrendingSource | None = None,
            trace: Trace | None = None) -> Ranked:
    """Items nearest the given items (a product, a whole cart), through the same finishing
    stage: a live stock change or a rule applies here as everywhere. No diversity cap: similar
    to a shoe means shoes. Items the model never saw (new in the catalog) are similar to their
    category: its trending items, else its most popular ones."""
    view = view if view is not None else caches.base_view(model)
    stage = Stage(model, caches, view, rules if rules is not None else Applied(), None,
                  [*item_indices, *exclude], 0.0, 1.0, trace)
    known = [i for i in item_indices if i < view.n_model]
    if known:
        allowed = stage.rules.allowed(cfg.filter_scan_max)
        if allowed is not None and (vec := unit(model.item_factors[known].sum(axis=0))) is not None:
            # Include-only rules in scope: the nearest among the items they allow.
            shown = view.visible if stage.rules.show_out_of_stock else view.available
            items, scores = allowed_candidates(model, allowed, vec.astype(np.float32, copy=False),
                                               k + len(exclude) + len(known), shown)
        else:
            # Rule filters may drop many of the nearest items: look further when some are in scope.
            extra = 4 * k if stage.rules.effect.has_filter else 0
            items, scores = similar_candidates(model, caches, known, k + len(exclude) + extra)
            if model.neighbours is not None:
                items, scores = similar_blended(model, known, items, scores, k + len(exclude) + extra)
        return finish(stage, items, scores, k, Explain("context", label=f"similar to {label}"))
    category = next((c for c in map(view.category_of, item_indices) if c is not None), None)
    if category is None:
        return Ranked([], [], [], "popular")

    def done(items: np.ndarray, scores: np.ndarray, explain: Explain, k: int = k,
             also: list[int] = ()) -> Ranked:
        return finish(stage, items, scores, k, explain, also=also, pins=False)

    ranked = None
    live_list = trending.get(view, category) if trending is not None else None
    if live_list is not None and live_list[0].size:
        ranked = done(*live_list, Explain("trending", label=f"more in {category}"))
        if len(ranked.items) < max(1, k // 2):
            ranked = None
    if not (ranked and ranked.items):
        ranked = done(*_popular(view, category, k, len(stage.excluded)),
                      Explain("popular", label=f"more in {category}"))
    if len(ranked.items) < k:
        ranked = _top_up(view, k, category, ranked, done, len(stage.excluded))
    return place_pins(stage, ranked, k)
