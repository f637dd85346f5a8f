"""Applied: the merchandising rules in scope for one request, as the finishing stage uses them
(server/recommend/finish.py): filter candidates, adjust their scores, say which rules changed
the answer. Pure: numpy over the RuleIndex's bits."""

from __future__ import annotations

import numpy as np

from server.merchandising.compiled import NO_EFFECT, Effect, RuleIndex
from server.recommend.filtered import AllowedSet


class Applied:
    __slots__ = ("index", "effect", "changed", "_removed")

    def __init__(self, index: RuleIndex | None = None, effect: Effect = NO_EFFECT):
        self.index, self.effect = index, effect
        self.changed: dict[str, None] = {}  # rule ids that changed the answer, first first
        self._removed: list[np.ndarray] = []  # bits of what the filters removed (attributed once)

    @property
    def empty(self) -> bool:
        return self.effect.empty

    @property
    def show_out_of_stock(self) -> bool:
        return self.effect.show_out_of_stock is True

    def allowed(self, scan: int) -> AllowedSet | None:
        """Where candidates come from when include-only rules are in scope (None otherwise)."""
        if self.index is None or not self.effect.include_key:
            return None
        allowed = self.index.allowed(self.effect, scan)
        if allowed.size < self.index.view.n_model:  # the candidates come from the rules' items only
            self.note(self.effect.slot_rule[s] for s in self.effect.include_key)
        return allowed

    def bits(self, items: np.ndarray) -> np.ndarray:
        return self.index.bits[items]  # type: ignore[union-attr]

    def passes(self, items: np.ndarray) -> np.ndarray | None:
        """Mask of `items` every filter in scope lets through (None: no filter in scope); the
        filters that removed something are noted as having changed the answer."""
        e = self.effect
        if not e.has_filter:
            return None
        b = self.bits(items)
        if b.shape[1] == 1:
            b0, exc, inc = b[:, 0], e.exclude[0], e.include[0]
            ok = (b0 & exc) == 0
            if inc:
                ok &= (b0 & inc) == inc
        else:
            ok = ((b & e.exclude) == 0).all(axis=1) & ((b & e.include) == e.include).all(axis=1)
        if not ok.all():
            self._removed.append(b[~ok])
        return ok

    def factors(self, items: np.ndarray) -> np.ndarray | None:
        """Per item, the product of the factors of the boosts and buries it matches (None: no
        boost or bury in scope). One unpack of the bits and one small matrix product."""
        e = self.effect
        if not e.has_adjust:
            return None
        b = self.bits(items).view(np.uint8).reshape(items.size, -1)
        if e.adjust_bytes.size < b.shape[1]:
            b = b[:, e.adjust_bytes]
        flags = np.unpackbits(b, axis=1, bitorder="little").astype(np.float32)
        return np.exp(flags @ e.adjust_logf)

    def note_matches(self, items: list[int] | np.ndarray, which: np.ndarray) -> None:
        """Note the rules of `which` (a mask per word) that match any of `items`."""
        if len(items) and which.any():
            hit = np.bitwise_or.reduce(self.bits(np.asarray(items)) & which, axis=0)
            self.note(self.effect.slots_in(hit))

    def note(self, rule_ids) -> None:
        for rule_id in rule_ids:
            self.changed[rule_id] = None

    def changed_rules(self) -> list[str]:
        """The rules that changed the answer, in the rule set's order (priority, then id)."""
        if self._removed:  # a filter that removed a candidate: an exclude its item matched, an
            e = self.effect  # include it didn't
            removed = np.concatenate(self._removed)
            self._removed = []
            hit = (np.bitwise_or.reduce(removed & e.exclude, axis=0)
                   | np.bitwise_or.reduce(~removed & e.include, axis=0))
            self.note(e.slots_in(hit))
        return [r for r in self.effect.ids if r in self.changed]
