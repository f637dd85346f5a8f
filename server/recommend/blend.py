"""Sessions ranked as the trainer evaluated them: the fold-in's candidates blended with the
item-item model's and a popularity prior (`models.ranking.rank_session`, the function the
trainer's evaluation calls), for models whose manifest chose such a blend.

The ladder calls it on the session rung (an anonymous shopper, or one the model doesn't know)
and on the context rung (a product or cart page); a known customer's trained vector keeps the
fold-in path. The page's items count as session items of value 1 for the item-item model (the
shopper is looking at them), and the prior is the session's: a page without a session gets
none, so "similar to this" stays about the product. Pure numpy over the ServingModel.
"""

from __future__ import annotations

import numpy as np

from models.itemitem import item_values, session_scores
from models.ranking import rank_session
from server.catalog.view import ItemsView
from server.recommend.model import ServingModel
from server.recommend.retrieval import SessionFold

_EMPTY = np.zeros(0, np.int64)


def blended_candidates(model: ServingModel, view: ItemsView, vec: np.ndarray, found: np.ndarray,
                       found_scores: np.ndarray, fold: SessionFold | None, context: list[int],
                       category_code: int | None, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(items, blended scores), best first. `found`/`found_scores`: the fold-in's candidates
    (the index's, or a small category's exactly); `context`: the page's item rows;
    `category_code`: keep only that category's items (a category page)."""
    n_model = model.n_items
    order = np.argsort(-found_scores, kind="stable")[:depth]
    found = found[order]
    found = found[found < n_model]  # items the catalog added have no factors nor neighbours
    has_session = fold is not None and fold.items.size > 0
    blend = model.blend if has_session else model.similar_blend
    n_session = (fold.items.size if has_session else 0) + len(context)
    itemitem = _itemitem(model, fold if has_session else None, context)
    if category_code is None:
        popular = model.popular
    else:
        pool = view.pool(category_code)
        popular = pool[pool < n_model] if pool is not None else _EMPTY
    items, scores = rank_session(
        blend, n_session, popularity=model.art.popularity, popular=popular, depth=depth,
        foldin_candidates=found, foldin_scores=lambda rows: model.item_factors.take(rows, axis=0) @ vec,
        itemitem=itemitem)
    if category_code is not None:
        keep = view.category[items] == category_code
        items, scores = items[keep], scores[keep]
    return items, scores.astype(np.float32)


def similar_blended(model: ServingModel, known: list[int], found: np.ndarray, found_scores: np.ndarray,
                    depth: int) -> tuple[np.ndarray, np.ndarray]:
    """"Similar to these items" with the item-item model: their neighbour rows summed, blended
    with the factors' nearest (`found`, scored against the sum of the items' vectors; no
    popularity prior)."""
    vec = model.item_factors[known].sum(axis=0)
    items, scores = rank_session(
        model.similar_blend, len(known), popularity=model.art.popularity, popular=_EMPTY, depth=depth,
        foldin_candidates=found[np.argsort(-found_scores, kind="stable")],
        foldin_scores=lambda rows: model.item_factors.take(rows, axis=0) @ vec,
        itemitem=_itemitem(model, None, known))
    return items, scores.astype(np.float32)


def _itemitem(model: ServingModel, fold: SessionFold | None,
              context: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
    """The item-item scores of the session and the page's items, memoised on the (reused)
    session fold when the page adds nothing."""
    if model.neighbours is None:
        return None
    if fold is not None and not context:
        if fold.itemitem is None:
            fold.itemitem = session_scores(model.neighbours, fold.items,
                                           item_values(fold.weights, model.saturation))
        return fold.itemitem
    items = np.asarray(context, np.int64)
    values = np.ones(items.size)
    if fold is not None:
        items = np.concatenate([fold.items, items])
        values = np.concatenate([item_values(fold.weights, model.saturation), values])
    return session_scores(model.neighbours, items, values)
