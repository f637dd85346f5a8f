"""Rules compiled for the hot path. Pure: no Redis, no aiohttp.

- `RuleSet`: the stored rules, each compiled once (its scope: placements, segments, a GrowthBook
  condition compiled by server/experiments/conditions.py, a schedule), grouped by placement.
- `RuleIndex`: for one ItemsView, every match rule's items as one bit per (item, rule) in a
  uint64 array, kept current as the catalog changes (only the changed items are re-matched).
- `Effect`: the rules in scope for one request, combined into bit masks (filters), a log-factor
  per bit (boost, bury), pins and the out-of-stock choice; cached per distinct scope.

So a request pays for the rules in scope with one gather of the candidates' bits and a few
vectorised integer operations, whatever their number (benchmarks/results/catalog.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from server.catalog.view import ItemsView
from server.experiments.conditions import Condition, compile_condition
from server.merchandising.matching import Matcher
from server.merchandising.rules import MATCH_KINDS, AnyRule, OutOfStock, Pin, rule_problems
from server.recommend.filtered import AllowedSet
from server.recommend.placements import RULE_PLACEMENTS

EFFECTS_KEPT = 1_024  # distinct scopes cached per index (placements x segments x conditions)
ALLOWED_MAX_BYTES = 128 << 20  # include-only candidate sets kept per index (5 MB each at 20k items)


@dataclass(frozen=True, eq=False)
class Compiled:
    rule: AnyRule
    order: int  # position in the rule set: priority first, then id
    slot: int  # its bit in the RuleIndex (match kinds), -1 otherwise
    placements: frozenset[str] | None
    segments: frozenset[str] | None
    condition: Condition | None
    start_ms: int | None
    end_ms: int | None
    matcher: Matcher | None = None

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def kind(self) -> str:
        return self.rule.kind

    @property
    def unconditional(self) -> bool:
        return (self.segments is None and self.condition is None and self.start_ms is None
                and self.end_ms is None)

    def live_at(self, now_ms: int) -> bool:
        return ((self.start_ms is None or now_ms >= self.start_ms)
                and (self.end_ms is None or now_ms < self.end_ms))


@dataclass
class Shopper:
    """What a rule's scope may ask about the shopper, computed only when a rule asks."""

    segment: str | None = None
    attributes: Callable[[], Mapping[str, Any]] | None = None  # GrowthBook targeting attributes
    _attrs: Mapping[str, Any] | None = field(default=None, repr=False)

    def attrs(self) -> Mapping[str, Any]:
        if self._attrs is None:
            self._attrs = self.attributes() if self.attributes is not None else {}
        return self._attrs


class RuleSet:
    """The stored rules, compiled. A rule that fails to compile is left out and reported in
    `errors`: it never stops the others."""

    def __init__(self, rules: list[AnyRule], version: int = 0):
        self.version = version
        self.errors: dict[str, str] = {}
        compiled: list[Compiled] = []
        conditions: dict[bytes, Condition] = {}
        ordered = sorted((r for r in rules if r.enabled), key=lambda r: (-r.priority, r.id))
        for rule in ordered:
            try:
                compiled.append(self._compile(rule, len(compiled), sum(c.slot >= 0 for c in compiled),
                                              conditions))
            except Exception as exc:  # noqa: BLE001 - one bad rule must not stop the others
                self.errors[rule.id] = f"{type(exc).__name__}: {exc}"
        self.rules = compiled
        self.disabled = [r.id for r in rules if not r.enabled]
        self.slots = [c for c in compiled if c.slot >= 0]
        self.words = max(1, math.ceil(len(self.slots) / 64))
        self.by_placement = {p: tuple(c for c in compiled if c.placements is None or p in c.placements)
                             for p in RULE_PLACEMENTS}
        # Per placement, the rules always in scope (no schedule, segment or condition), and the
        # others, checked per request: a request pays for the scoped rules only.
        scoped = self.by_placement.items()
        self._static = {p: tuple(c.order for c in rs if c.unconditional) for p, rs in scoped}
        self._dynamic = {p: tuple(c for c in rs if not c.unconditional) for p, rs in scoped}
        # Per placement: does any rule need the shopper (segment, condition)?
        self.targeted = {p: any(c.segments is not None or c.condition is not None for c in rs)
                         for p, rs in self.by_placement.items()}

    @staticmethod
    def _compile(rule: AnyRule, order: int, slot: int, conditions: dict[bytes, Condition]) -> Compiled:
        problems = rule_problems(rule)
        if problems:
            raise ValueError("; ".join(f"{f}: {m}" for f, m in problems))
        is_match = rule.kind in MATCH_KINDS
        condition = None
        if rule.condition:  # one closure per distinct condition: evaluated once per request
            key = orjson.dumps(rule.condition, option=orjson.OPT_SORT_KEYS)
            condition = conditions.get(key) or conditions.setdefault(key, compile_condition(rule.condition))
        return Compiled(
            rule=rule, order=order, slot=slot if is_match else -1,
            placements=frozenset(rule.placements) if rule.placements is not None else None,
            segments=frozenset(rule.segments) if rule.segments is not None else None,
            condition=condition, start_ms=rule.start_ms, end_ms=rule.end_ms,
            matcher=Matcher(rule.match) if is_match else None)  # type: ignore[union-attr]

    def in_scope(self, placement: str, now_ms: int, shopper: Shopper | None) -> tuple[int, ...]:
        """The orders of the rules that apply to this request, best first."""
        static, dynamic = self._static.get(placement, ()), self._dynamic.get(placement, ())
        if not dynamic:
            return static
        passed: list[int] = []
        verdicts: dict[int, bool] = {}  # per distinct condition, for this request
        for c in dynamic:
            if not c.live_at(now_ms):
                continue
            if c.segments is not None and (shopper is None or shopper.segment not in c.segments):
                continue
            if c.condition is not None:
                verdict = verdicts.get(id(c.condition))
                if verdict is None:
                    verdict = verdicts[id(c.condition)] = c.condition(shopper.attrs() if shopper else {})
                if not verdict:
                    continue
            passed.append(c.order)
        if not static:
            return tuple(passed)
        return tuple(sorted((*static, *passed)))


class Effect:
    """The rules in scope for a request, combined. Bits of slot s: word s // 64, bit s % 64."""

    def __init__(self, ruleset: RuleSet, chosen: tuple[int, ...]):
        words = ruleset.words
        self.rules = [ruleset.rules[j] for j in chosen]
        self.exclude = np.zeros(words, np.uint64)
        self.include = np.zeros(words, np.uint64)
        self.boosts = np.zeros(words, np.uint64)
        self.buries = np.zeros(words, np.uint64)
        self.logf = np.zeros(64 * words, np.float32)
        self.slot_rule: dict[int, str] = {}
        self.pins: list[tuple[int, str, str]] = []  # (0-based position, item id, rule id), best first
        self.show_out_of_stock: bool | None = None  # None: no out_of_stock rule in scope
        self.out_of_stock_rule: str | None = None
        taken: set[int] = set()
        for c in self.rules:
            rule = c.rule
            if c.slot >= 0:
                word, bit = divmod(c.slot, 64)
                flag = np.uint64(1 << bit)
                self.slot_rule[c.slot] = rule.id
                if rule.kind == "exclude":
                    self.exclude[word] |= flag
                elif rule.kind in ("include", "price_bounds"):
                    self.include[word] |= flag
                else:
                    (self.boosts if rule.kind == "boost" else self.buries)[word] |= flag
                    self.logf[c.slot] = math.log(rule.factor)  # type: ignore[union-attr]
            elif isinstance(rule, Pin) and rule.position not in taken:
                taken.add(rule.position)
                self.pins.append((rule.position - 1, rule.item_id, rule.id))
            elif isinstance(rule, OutOfStock) and self.show_out_of_stock is None:
                self.show_out_of_stock, self.out_of_stock_rule = not rule.hide, rule.id
        self.pins.sort()
        self.has_filter = bool(self.exclude.any() or self.include.any())
        self.has_adjust = bool(self.boosts.any() or self.buries.any())
        self.include_key = tuple(c.slot for c in self.rules if c.slot >= 0 and c.rule.kind in ("include",
                                                                                             "price_bounds"))
        self.ids = [c.id for c in self.rules]
        self.empty = not self.rules
        # Adjustments read only the bytes of the bits that hold a boost or bury in scope: the
        # unpacked flags of those bytes, times their log-factors.
        adjust = np.flatnonzero(self.logf)
        self.adjust_bytes = np.unique(adjust // 8)
        self.adjust_logf = np.ascontiguousarray(
            self.logf.reshape(-1, 8)[self.adjust_bytes].reshape(-1)) if adjust.size else self.logf[:0]

    def slots_in(self, words: np.ndarray) -> list[str]:
        """Rule ids of the slots set in `words` (one uint64 per word)."""
        out = []
        for w, value in enumerate(words.tolist()):
            while value:
                low = value & -value
                out.append(self.slot_rule.get(64 * w + low.bit_length() - 1))
                value ^= low
        return [r for r in out if r is not None]


NO_EFFECT = Effect(RuleSet([]), ())


class RuleIndex:
    """Every match rule's items over one view, as bits, kept current with the catalog."""

    def __init__(self, ruleset: RuleSet, view: ItemsView):
        self.ruleset, self.view = ruleset, view
        self.version = view.version
        self.bits = np.zeros((view.hidden.size, ruleset.words), np.uint64)
        self.bytes_per_item = 8 * ruleset.words
        for c in ruleset.slots:
            word, bit = divmod(c.slot, 64)
            self.bits[c.matcher.all_items(view), word] |= np.uint64(1 << bit)  # type: ignore[union-attr]
        self.bits_version = 0  # bumped when a catalog change moved an item in or out of a rule
        self._effects: dict[tuple[int, ...], Effect] = {}
        self._allowed: dict[tuple, AllowedSet] = {}  # include-only candidate sets, by their rules

    def sync(self) -> None:
        """Re-match the items the catalog changed since this index last looked."""
        view = self.view
        if self.version == view.version and self.bits.shape[0] == view.hidden.size:
            return
        if self.bits.shape[0] != view.hidden.size:
            grown = np.zeros((view.hidden.size, self.ruleset.words), np.uint64)
            grown[: self.bits.shape[0]] = self.bits
            self.bits = grown
        rows = view.changed_since(self.version)
        if rows is None:
            fresh = RuleIndex(self.ruleset, view)
            self.bits, changed = fresh.bits, True
        else:
            new = np.zeros((rows.size, self.ruleset.words), np.uint64)
            for c in self.ruleset.slots:
                word, bit = divmod(c.slot, 64)
                new[c.matcher.rows(view, rows), word] |= np.uint64(1 << bit)  # type: ignore[union-attr]
            changed = not np.array_equal(self.bits[rows], new)
            self.bits[rows] = new
        if changed:
            self.bits_version += 1
            self._allowed.clear()
        self.version = view.version

    def effect(self, chosen: tuple[int, ...]) -> Effect:
        if not chosen:
            return NO_EFFECT
        effect = self._effects.get(chosen)
        if effect is None:
            if len(self._effects) >= EFFECTS_KEPT:
                self._effects.clear()
            effect = self._effects[chosen] = Effect(self.ruleset, chosen)
        return effect

    def allowed(self, effect: Effect, scan: int) -> AllowedSet | None:
        """The candidates of the include-only rules in `effect` (None without any), made once
        per set of rules and catalog state."""
        if not effect.include_key:
            return None
        key = (effect.include_key, scan)
        found = self._allowed.get(key)
        if found is None:
            inc = effect.include
            bits = self.bits[: self.view.n_model]
            ok = ((bits & inc) == inc).all(axis=1) if bits.shape[1] > 1 else (bits[:, 0] & inc[0]) == inc[0]
            found = AllowedSet(self.view.model, ok, scan)
            if sum(a.nbytes for a in self._allowed.values()) + found.nbytes > ALLOWED_MAX_BYTES:
                self._allowed.clear()
            self._allowed[key] = found
        return found
