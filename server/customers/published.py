"""What the served model published about customers, ready for one customer at a time: their
purchase statistics as of `as_of_ms`, churn probability, purchase history, the items'
repurchase cycles, the RFM edges and the rules the trainer used.

Built once per model version (a dict of the purchasing customers: ~30 ms per 400k customers),
in the background when a new version is served (`Customers.run`), else on first use."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.idtable import IdTable
from models.repurchase import history
from models.rfm import CustomerStats, RfmEdges, published_stats
from models.segments import RuleError, SegmentRules, parse_rules
from server.recommend.model import ServingModel


@dataclass(frozen=True)
class PublishedCustomers:
    as_of_ms: int  # purchases at or before this are in the published statistics
    rows: Mapping[str, int]  # user_id -> row of the segments file
    segments: dict
    rules: SegmentRules | None  # the trainer's rule set (None: an older artifact)
    edges: RfmEdges | None
    cycles: np.ndarray | None  # repurchase cycle (days) per item, NaN: none
    consumable_cycles: bool  # whether any item has a cycle

    @classmethod
    def of(cls, model: ServingModel) -> PublishedCustomers:
        seg = model.art.segments or {}
        has_stats = "last_purchase_ms" in seg
        rules = None
        if "rules" in seg:
            try:
                rules = parse_rules(seg["rules"], source="the model's segment rules")
            except RuleError:
                rules = None
        rep = model.art.repurchase
        cycles = np.asarray(rep["cycle_days"], dtype=np.float64) if rep is not None else None
        return cls(
            as_of_ms=int(seg.get("as_of_ms", 0)) if has_stats else 0,
            rows=_rows(seg.get("users", ())) if has_stats else {},
            segments=seg if has_stats else {},
            rules=rules,
            edges=RfmEdges.from_dict(seg["rfm_edges"]) if "rfm_edges" in seg else None,
            cycles=cycles,
            consumable_cycles=bool(cycles is not None and np.isfinite(cycles).any()),
        )

    @classmethod
    def empty(cls) -> PublishedCustomers:
        return cls(0, {}, {}, None, None, None, False)

    def stats(self, user_id: str | None) -> CustomerStats | None:
        row = self.rows.get(user_id) if user_id else None
        return None if row is None else published_stats(self.segments, row)

    def churn_probability(self, user_id: str | None) -> float | None:
        row = self.rows.get(user_id) if user_id else None
        values = self.segments.get("churn_probability")
        if row is None or values is None:
            return None
        value = values[row]
        return None if value is None or math.isnan(value) else float(value)

    def published_segment(self, user_id: str | None) -> str | None:
        row = self.rows.get(user_id) if user_id else None
        return None if row is None else self.segments["segment"][row]

    def history(self, model: ServingModel, user_id: str | None) -> list[tuple[int, int]]:
        """(item index, last purchase ms) per item the customer bought, as published."""
        rep = model.art.repurchase
        row = model.art.user_index.get(user_id) if user_id and rep is not None else None
        return [] if row is None else history(rep, row)


def _rows(users: Sequence[str]) -> Mapping[str, int]:
    """Customer id -> row of the segments file: the loaded artifact's IdTable already maps them."""
    return users.rows if isinstance(users, IdTable) else {u: i for i, u in enumerate(users)}
