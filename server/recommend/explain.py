"""The admin debug view's record of one answer (`GET /v1/admin/explain`): filled by the
finishing stage only when asked, never on the request path of an ordinary answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from server.catalog.view import ItemsView
from server.merchandising.applied import Applied


@dataclass
class Trace:
    """Why each item is where it is, for the admin debug view."""
    target: int | None = None  # an item row to follow through every list
    lists: list[dict[str, Any]] = field(default_factory=list)
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)  # row -> score parts, rules
    pinned: dict[int, str] = field(default_factory=dict)  # row -> pin rule


def record_filters(trace: Trace, view: ItemsView, rules: Applied, excluded: set[int], items: np.ndarray,
                   rung: str) -> dict[str, Any]:
    """Before the filters: what each removes from one list, and the followed item's fate."""
    removed: dict[str, int] = {}
    fates: dict[int, str] = {}
    for i in items.tolist():
        why = None
        if view.hidden[i]:
            why = "hidden by the catalog"
        elif not view.in_stock[i] and not rules.show_out_of_stock:
            why = "out of stock"
        elif i in excluded:
            why = "excluded (page item, exclusion, seen, bought or returned)"
        elif not rules.empty and rules.effect.has_filter:
            b = rules.bits(np.array([i]))[0]
            e = rules.effect
            hit = e.slots_in((b & e.exclude) | (~b & e.include))
            if hit:
                why = "rule " + ", ".join(hit)
        if why is not None:
            removed[why] = removed.get(why, 0) + 1
            fates[i] = why
    record = {"rung": rung, "candidates": int(items.size), "removed": removed}
    if trace.target is not None:
        if not (items == trace.target).any():
            record["target"] = "not a candidate"
        else:
            fate = fates.get(trace.target)
            record["target"] = f"removed: {fate}" if fate else "passed the filters"
    trace.lists.append(record)
    return record


def record_parts(trace: Trace, record: dict[str, Any], items: np.ndarray, raw: np.ndarray,
                 final: np.ndarray, affinity: np.ndarray | None, factors: np.ndarray | None,
                 rules: Applied, top: list[int]) -> None:
    """After the adjustments: the score parts and rules of the items shown and followed."""
    follow = set(top) | ({trace.target} if trace.target is not None else set())
    order = (-final).argsort(kind="stable")
    rank = {int(items[j]): r + 1 for r, j in enumerate(order.tolist())}
    norm = max(float(np.abs(raw).max()), 1e-9)
    for j, i in enumerate(items.tolist()):
        if i not in follow:
            continue
        matched = []
        if not rules.empty and rules.index is not None:
            matched = rules.effect.slots_in(rules.bits(np.array([i]))[0])
        trace.parts.setdefault(i, {
            "rung": record["rung"], "raw_score": float(raw[j]), "normalised": float(raw[j]) / norm,
            "affinity": float(affinity[j]) if affinity is not None else 0.0,
            "factor": float(factors[j]) if factors is not None else 1.0, "final_score": float(final[j]),
            "rank_before_diversity": rank[i], "rules_matched": matched})
    if trace.target is not None and trace.target in rank and trace.target not in top:
        record["target"] = (f"ranked {rank[trace.target]} of {items.size}: below the cut, or over the "
                            "diversity cap")
