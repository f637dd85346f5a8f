"""The finishing stage: every answer (each rung of the ladder, its top-up, similar items,
trending) goes through `finish()`, in this order:

1. servable filters: in stock, not excluded (the page's items, explicit exclusions, what the
   shopper already saw this session, returned items, purchases unless consumable);
2. score adjustments: scores on one scale (the best candidate 1), plus the live category
   affinity (merchandising boosts and buries join here);
3. diversity: at most a share of `k` from one category;
4. pinned positions (merchandising, next);
5. reasons: why each item is there, naming only items the shopper really saw; an item the
   diversity cap brought in says so ("for variety"), a popular top-up says "popular".

Pure functions over the ServingModel and its Caches (no I/O), so a rule or a live stock change
added here applies to every answer at once.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from server.recommend.caches import Caches
from server.recommend.model import ServingModel
from server.recommend.retrieval import Query
from server.store.records import LiveSession

_VERB = {"view": "viewed", "add_to_cart": "added to your cart", "purchase": "bought"}
VARIETY = "for variety"  # the reason of an item the diversity cap brought in


@dataclass(slots=True)
class Ranked:
    items: list[int]
    scores: list[float]
    reasons: list[str]
    rung: str


@dataclass(slots=True)
class Explain:
    """What the candidates came from, for the reasons."""
    rung: str
    used: dict[int, str] = field(default_factory=dict)  # session items folded in, newest first
    context: str | None = None  # a page item the candidates are similar to (a known id)
    label: str | None = None  # a fixed reason ("trending in shoes", "similar to your cart")


def excluded_indices(model: ServingModel, q: Query, live: LiveSession | None) -> list[int]:
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
    return out


def servable(model: ServingModel, caches: Caches, items: np.ndarray, excluded: list[int]) -> np.ndarray:
    """Mask of `items` that may be shown: in stock and not excluded. A boolean table lookup
    (np.isin sorts both arrays: ~50 µs here against ~3 µs)."""
    keep = model.available[items]
    if excluded:
        scratch = caches.scratch
        scratch[excluded] = True
        try:
            keep &= ~scratch[items]
        finally:
            scratch[excluded] = False
    return keep


def affinity_share(model: ServingModel, live: LiveSession | None) -> tuple[np.ndarray, int | None] | None:
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


def diverse_top(items: np.ndarray, scores: np.ndarray, cats: np.ndarray, k: int, share: float):
    """Best-first, at most ceil(share·k) items per category; tops up past the cap if short.
    Only the best 8·k candidates are considered (a whole category can be thousands).
    Returns the chosen items, their scores and their category codes, as lists."""
    best = min(items.size, max(8 * k, 64))
    # ndarray methods, not numpy's functions: their wrappers cost ~1 µs a call
    if items.size <= 256:  # the usual index candidates: one small sort beats partition + sort
        order = (-scores).argsort(kind="stable")[:best].tolist()
    else:
        head = (-scores).argpartition(best - 1)[:best]
        order = head[(-scores[head]).argsort(kind="stable")].tolist()
    if share >= 1:
        taken = order[:k]
        cat_list = cats.tolist()
        return items[taken].tolist(), scores[taken].tolist(), [cat_list[j] for j in taken]
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


def finish(model: ServingModel, caches: Caches, items: np.ndarray, scores: np.ndarray, k: int,
           live: LiveSession | None, excluded: list[int], explain: Explain, *,
           affinity_weight: float, category_share: float) -> Ranked:
    """Filter, adjust, diversify, pin and explain `items` (with their rung's raw `scores`)."""
    keep = servable(model, caches, items, excluded)
    items, scores = items[keep], scores[keep]
    if items.size == 0:
        return Ranked([], [], [], explain.rung)
    scores = scores / max(float(np.abs(scores).max()), 1e-9)
    cats = model.item_category[items]
    lead = None
    if affinity_weight > 0 and (affinity := affinity_share(model, live)) is not None:
        share, lead = affinity
        scores = scores + affinity_weight * share[cats]
    top, top_scores, top_cats = diverse_top(items, scores, cats, k, category_share)
    why = reasons(model, top, top_cats, explain, lead)
    if category_share < 1 and scores.size > len(top):
        # Below the k-th best score, an item is there only because the diversity cap made room:
        # its rung's reason ("because you viewed <a toy>") would not be true of it.
        kth = float(scores[(-scores).argpartition(len(top) - 1)[len(top) - 1]])
        why = [VARIETY if s < kth else r for r, s in zip(why, top_scores, strict=True)]
    return Ranked(top, top_scores, why, explain.rung)


def reasons(model: ServingModel, top: list[int], top_cats: list[int], explain: Explain,
            lead: int | None) -> list[str]:
    """Per item, why: the session item it is closest to, the page's item, its rung's label, or
    the category the shopper is mostly browsing (`lead`, from affinity_share)."""
    ids = model.art.items.ids
    if explain.used:
        src = list(itertools.islice(explain.used, 20))  # the newest 20 session items
        y = model.item_factors
        best = (y[top] @ y[src].T).argmax(axis=1).tolist()
        out = [f"because you {_VERB.get(explain.used[src[b]], 'viewed')} {ids[src[b]]}" for b in best]
    elif explain.label is not None:
        out = [explain.label] * len(top)
    elif explain.context is not None:
        out = [f"similar to {explain.context}"] * len(top)
    else:
        out = ["recommended for you"] * len(top)
    if lead is not None:
        name = f"because you're browsing {model.categories[lead]}"
        out = [name if c == lead else r for r, c in zip(out, top_cats, strict=True)]
    return out
