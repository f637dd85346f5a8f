"""The finishing stage: every answer (each rung of the ladder, its top-up, similar items,
trending) goes through `finish()`, in this order:

1. servable filters: shown (not hidden by the live catalog; in stock, unless an out_of_stock
   rule in scope shows those), not excluded (the page's items, explicit exclusions, what the
   shopper already saw this session, returned items, purchases unless consumable), and the
   merchandising filters in scope (exclude, include-only, price bounds);
2. score adjustments: scores on one scale (the best candidate 1), plus the live category
   affinity, times the factors of the boosts and buries in scope;
3. diversity: at most a share of `k` from one category;
4. pins: merchandising pins at their positions (`place_pins`, once per answer: after a top-up
   when the ladder extends a short list); a pinned item must pass the filters of step 1;
5. reasons: why each item is there, naming only items the shopper really saw; an item the
   diversity cap brought in says so ("for variety"), a popular top-up says "popular".

Pure functions over a Stage (the request's model and live items view, the rules in scope, the
shopper's session): no I/O, so a rule or a live stock change applies to every answer at once.
The rules that changed the answer are noted on `stage.rules`; `stage.trace`, when the admin
debug view asks, records why each item is where it is (explain.py).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from server.catalog.view import ItemsView
from server.merchandising.applied import Applied
from server.recommend.caches import Caches
from server.recommend.explain import Trace, record_filters, record_parts
from server.recommend.model import ServingModel
from server.recommend.retrieval import Query
from server.store.records import LiveSession

_VERB = {"view": "viewed", "add_to_cart": "added to your cart", "purchase": "bought"}
VARIETY = "for variety"  # the reason of an item the diversity cap brought in
PINNED_REASON = "featured"


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


@dataclass(slots=True)
class Stage:
    """What finish() needs that is the same for every list of one request."""
    model: ServingModel
    caches: Caches
    view: ItemsView
    rules: Applied
    live: LiveSession | None
    excluded: list[int]
    affinity_weight: float
    category_share: float
    trace: Trace | None = None


def excluded_indices(view: ItemsView, q: Query, live: LiveSession | None) -> list[int]:
    """Items never to show: context items, explicit exclusions, what the shopper saw in this
    session (as the offline evaluation excludes the folded-in items), returned items, and
    purchased items unless they are consumables (re-bought on a cycle)."""
    index_of = view.index_of
    out = [i for i in map(index_of, (*q.context_items, *q.exclude)) if i is not None]
    if live is not None:
        out += [i for i in (index_of(x[0]) for x in live.items if x[1] != "purchase") if i is not None]
        out += [i for i in map(index_of, live.returned) if i is not None]
        out += [i for i in map(index_of, live.purchased) if i is not None and not view.consumable[i]]
    return out


def servable(stage: Stage, items: np.ndarray, also: list[int] = ()) -> np.ndarray:
    """Mask of `items` that may be shown: shown by the catalog (in stock unless a rule shows
    out-of-stock items), not excluded, through the rule filters. Boolean table lookups (np.isin
    sorts both arrays: ~50 µs here against ~3 µs)."""
    rules, view = stage.rules, stage.view
    oos = rules.show_out_of_stock
    keep = (view.visible if oos else view.available)[items]
    if oos and not view.in_stock[items].all():
        rules.note([rules.effect.out_of_stock_rule])
    excluded = stage.excluded + also if also else stage.excluded
    if excluded:
        scratch = stage.caches.scratch_for(view.n_items)
        scratch[excluded] = True
        try:
            keep &= ~scratch[items]
        finally:
            scratch[excluded] = False
    if not rules.empty:
        passes = rules.passes(items)
        if passes is not None:
            keep &= passes
    return keep


def affinity_share(view: ItemsView, live: LiveSession | None) -> tuple[np.ndarray, int | None] | None:
    """The live category affinities as shares of their total, by category code (the last slot,
    items without a category, stays 0), and the code of the category holding at least half of
    them, if one does; None without affinities."""
    if live is None or not live.category_affinity:
        return None
    codes, values = [], []
    for cat, value in live.category_affinity.items():
        code = view.category_code.get(cat)
        if code is not None and value > 0:
            codes.append(code)
            values.append(value)
    total = sum(values)
    if total <= 0:
        return None
    share = np.zeros(len(view.categories) + 1, dtype=np.float32)
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


def finish(stage: Stage, items: np.ndarray, scores: np.ndarray, k: int, explain: Explain, *,
           also: list[int] = (), pins: bool = True) -> Ranked:
    """Filter, adjust, diversify, pin and explain `items` (with their rung's raw `scores`).
    `also`: more items to exclude from this list (what a top-up extends); `pins=False` when the
    caller places the pins on the whole answer (place_pins)."""
    trace, rules = stage.trace, stage.rules
    if trace is not None:
        record = record_filters(trace, stage.view, stage.rules, set(stage.excluded) | set(also), items,
                                explain.rung)
    keep = servable(stage, items, also)
    items, scores = items[keep], scores[keep]
    if items.size == 0:
        ranked = Ranked([], [], [], explain.rung)
        return place_pins(stage, ranked, k) if pins else ranked
    raw = scores
    scores = scores / max(float(np.abs(scores).max()), 1e-9)
    cats = stage.view.category[items]
    lead = None
    affinity = None
    if stage.affinity_weight > 0 and (aff := affinity_share(stage.view, stage.live)) is not None:
        share, lead = aff
        affinity = stage.affinity_weight * share[cats]
        scores = scores + affinity
    factors = None if rules.empty else rules.factors(items)
    if factors is not None:
        before = scores
        scores = np.where(scores >= 0, scores * factors, scores / factors)
    top, top_scores, top_cats = diverse_top(items, scores, cats, k, stage.category_share)
    if factors is not None:
        _note_adjustments(rules, items, before, top, k)
    why = reasons(stage, top, top_cats, explain, lead)
    if stage.category_share < 1 and top and scores.size > len(top):
        # Below the k-th best score, an item is there only because the diversity cap made room:
        # its rung's reason ("because you viewed <a toy>") would not be true of it.
        kth = float(scores[(-scores).argpartition(len(top) - 1)[len(top) - 1]])
        why = [VARIETY if s < kth else r for r, s in zip(why, top_scores, strict=True)]
    ranked = Ranked(top, top_scores, why, explain.rung)
    if trace is not None:
        record_parts(trace, record, items, raw, scores, affinity, factors, rules, top)
    return place_pins(stage, ranked, k) if pins else ranked


def _note_adjustments(rules: Applied, items: np.ndarray, before: np.ndarray, top: list[int], k: int) -> None:
    """A boost changed the answer when it matches a shown item; a bury, when it matches an item
    that would have been in the top k without the adjustments."""
    e = rules.effect
    rules.note_matches(top, e.boosts)
    if e.buries.any():
        n = min(k, items.size)
        rules.note_matches(items[(-before).argpartition(n - 1)[:n]] if n < items.size else items, e.buries)


def place_pins(stage: Stage, ranked: Ranked, k: int) -> Ranked:
    """The pins in scope at their positions (1-based in the rules, best rule first), if the
    item may be shown here; the list stays `k` long and keeps its order otherwise."""
    rules = stage.rules
    if rules.empty or not rules.effect.pins:
        return ranked
    view = stage.view
    wanted = [(position, i, rule_id) for position, i, rule_id in
              ((p, view.index_of(item_id), r) for p, item_id, r in rules.effect.pins) if i is not None]
    if not wanted:
        return ranked
    ok = servable(stage, np.array([w[1] for w in wanted], np.int64)).tolist()  # one check for all
    placed: list[tuple[int, int, str]] = []
    for (position, i, rule_id), fine in zip(wanted, ok, strict=True):
        if fine and all(i != p[1] for p in placed):
            placed.append((position, i, rule_id))
    if not placed:
        return ranked
    pinned = {i for _, i, _ in placed}
    rest = [(i, s, r) for i, s, r in zip(ranked.items, ranked.scores, ranked.reasons, strict=True)
            if i not in pinned]
    out: list[tuple[int, float, str]] = []
    queue = iter(rest)
    for position, i, rule_id in placed:
        while len(out) < position and (nxt := next(queue, None)) is not None:
            out.append(nxt)
        if len(out) >= k:
            break
        score = out[-1][1] if out else (rest[0][1] if rest else 1.0)
        out.append((i, score, PINNED_REASON))
        rules.note([rule_id])
        if stage.trace is not None:
            stage.trace.pinned[i] = rule_id
    out += list(itertools.islice(queue, max(k - len(out), 0)))
    out = out[:k]
    return Ranked([x[0] for x in out], [x[1] for x in out], [x[2] for x in out], ranked.rung)


def reasons(stage: Stage, top: list[int], top_cats: list[int], explain: Explain,
            lead: int | None) -> list[str]:
    """Per item, why: the session item it is closest to, the page's item, its rung's label, or
    the category the shopper is mostly browsing (`lead`, from affinity_share)."""
    view = stage.view
    if explain.used:
        src = list(itertools.islice(explain.used, 20))  # the newest 20 session items
        y = stage.model.item_factors
        known = [i for i in top if i < view.n_model]  # the catalog's new items have no factors
        nearest = (y.take(known, axis=0) @ y.take(src, axis=0).T).argmax(axis=1).tolist() if known else []
        said = {j: f"because you {_VERB.get(explain.used[src[j]], 'viewed')} {view.id_of(src[j])}"
                for j in set(nearest)}  # one phrase per session item named, not per item shown
        best = dict(zip(known, nearest, strict=True))
        fallback = explain.label or "recommended for you"
        out = [said[best[i]] if i in best else fallback for i in top]
    elif explain.label is not None:
        out = [explain.label] * len(top)
    elif explain.context is not None:
        out = [f"similar to {explain.context}"] * len(top)
    else:
        out = ["recommended for you"] * len(top)
    if lead is not None:
        name = f"because you're browsing {view.categories[lead]}"
        out = [name if c == lead else r for r, c in zip(out, top_cats, strict=True)]
    return out
