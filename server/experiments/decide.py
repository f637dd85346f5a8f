"""Deciding a page's slots (and placements' strategies) for one shopper.

`compile_definitions` runs once per definitions version (conditions compiled, bucket ranges
computed, experiments indexed by slot); `decide` is then pure and allocation-light: per
experiment a dict lookup for the sticky assignment, else a namespace check, the compiled
condition and one GrowthBook hash. It returns what to show and what the store must write.

Order for one experiment, after GrowthBook's `runExperiment`: forced variant (QA: shown, never
recorded) → status → sticky assignment (skips every other check, so changing weights,
coverage or targeting never moves a unit already exposed) → start → hash attribute →
namespace → condition → bucket ranges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import msgspec

from server.experiments.bucketing import bucket_ranges, choose_variation, gb_hash, hash_string, in_namespace
from server.experiments.conditions import Condition, compile_condition
from server.experiments.definitions import Definitions, Experiment
from server.experiments.records import Assignment, AssignmentWrite, Exposure

Source = Literal["experiment", "forced", "rule", "default", "unknown"]


class SlotDecision(msgspec.Struct, omit_defaults=True):
    content: Any = None
    source: Source = "default"
    experiment: str | None = None
    variant: str | None = None
    rule: str | None = None


class Decisions(msgspec.Struct):
    slots: dict[str, SlotDecision]
    placements: dict[str, SlotDecision]
    writes: list[AssignmentWrite]  # sticky records to store (HSETNX: first writer wins)
    exposures: list[Exposure]  # units to count, once each (only if their write was new)


class CompiledExperiment:
    __slots__ = ("exp", "key", "seed", "version", "attribute", "ranges", "variants", "index",
                 "condition", "namespace", "forced")

    def __init__(self, exp: Experiment):
        self.exp = exp
        self.key = exp.key
        self.seed = exp.seed
        self.version = exp.hash_version
        self.attribute = exp.hash_attribute
        self.ranges = bucket_ranges(len(exp.variants), exp.coverage, exp.weights)
        self.variants = exp.variants
        self.index = {v.key: i for i, v in enumerate(exp.variants)}
        self.condition: Condition | None = compile_condition(exp.condition) if exp.condition else None
        self.namespace = exp.namespace
        self.forced = exp.forced

    def bucket(self, attributes: Mapping[str, Any]) -> int:
        """The variant index GrowthBook would assign (no stickiness, no status), or -1."""
        value = hash_string(attributes.get(self.attribute))
        if not value:
            return -1
        if self.namespace is not None and not in_namespace(value, self.namespace):
            return -1
        if self.condition is not None and not self.condition(attributes):
            return -1
        n = gb_hash(self.seed, value, self.version)
        return -1 if n is None else choose_variation(n, self.ranges)


class Compiled:
    """Definitions ready for the request path; build once per version."""

    def __init__(self, defs: Definitions):
        self.version = defs.version
        self.experiments = {e.key: CompiledExperiment(e) for e in defs.experiments}
        self.by_slot: dict[str, list[CompiledExperiment]] = {s.key: [] for s in defs.slots}
        self.by_placement: dict[str, list[CompiledExperiment]] = {}
        for ce in self.experiments.values():
            for slot in ce.exp.slots:
                self.by_slot.setdefault(slot, []).append(ce)
            if ce.exp.placement is not None:
                self.by_placement.setdefault(ce.exp.placement, []).append(ce)
        self.rules: dict[str, list[tuple[str, Condition, Any]]] = {}
        for rule in defs.rules:
            if rule.enabled:
                entry = (rule.key, compile_condition(rule.condition), rule.content)
                self.rules.setdefault(rule.slot, []).append(entry)
        self.defaults = {s.key: s.default for s in defs.slots}


def compile_definitions(defs: Definitions) -> Compiled:
    return Compiled(defs)


class _Outcome(msgspec.Struct):
    variant: int  # index, -1 when the unit is not in the experiment
    forced: bool = False


_OUT = _Outcome(-1)


class _Request:
    """One decide() call's inputs and what it has found so far (each experiment runs once)."""

    def __init__(self, session_id, user_id, attributes, user_sticky, session_sticky, forced, now_ms,
                 covariate):
        self.covariate = covariate
        self.session_id = session_id
        self.user_id = user_id
        self.attributes = attributes
        self.user_sticky = user_sticky
        self.session_sticky = session_sticky
        self.forced = forced
        self.now_ms = now_ms
        self.outcomes: dict[str, _Outcome] = {}
        self.writes: list[AssignmentWrite] = []
        self.exposures: list[Exposure] = []

    def run(self, ce: CompiledExperiment) -> _Outcome:
        outcome = self.outcomes.get(ce.key)
        if outcome is None:
            outcome = self.outcomes[ce.key] = self._run(ce)
        return outcome

    def _run(self, ce: CompiledExperiment) -> _Outcome:
        exp = ce.exp
        forced_key = self.forced.get(ce.key)
        if forced_key is None and ce.forced:
            forced_key = ce.forced.get(self.user_id or "") or ce.forced.get(self.session_id)
        if forced_key is not None and forced_key in ce.index:
            return _Outcome(ce.index[forced_key], forced=True)
        if exp.status in ("draft", "stopped") or (exp.end is not None and self.now_ms >= exp.end):
            return _OUT
        sticky = self.user_sticky.get(ce.key) if self.user_id else None
        if sticky is None:
            sticky = self.session_sticky.get(ce.key)
            if sticky is not None and self.user_id:
                # Logged in since: the user keeps the session's variant, on every device
                self.writes.append(AssignmentWrite("user", self.user_id, ce.key, sticky))
        if sticky is not None:
            # A variant removed from the definition takes its units out; never re-bucket them
            return _Outcome(ce.index.get(sticky.variant, -1))
        if exp.status == "paused" or (exp.start is not None and self.now_ms < exp.start):
            return _OUT
        index = ce.bucket(self.attributes)
        if index >= 0:
            unit = hash_string(self.attributes.get(ce.attribute))
            record = Assignment(ce.variants[index].key, self.now_ms, unit, self.covariate)
            owner, owner_id = ("user", self.user_id) if self.user_id else ("session", self.session_id)
            self.writes.append(AssignmentWrite(owner, owner_id, ce.key, record))
            self.exposures.append(Exposure(ce.key, record.variant, unit, self.now_ms))
        return _Outcome(index)

    def from_experiments(self, candidates: list[CompiledExperiment], slot: str | None) -> SlotDecision | None:
        for ce in candidates:
            outcome = self.run(ce)
            if outcome.variant < 0:
                continue
            variant = ce.variants[outcome.variant]
            content = variant.content
            if slot is not None and len(ce.exp.slots) > 1:
                content = (content or {}).get(slot)
            return SlotDecision(content, "forced" if outcome.forced else "experiment", ce.key, variant.key)
        return None


def decide(
    compiled: Compiled,
    *,
    session_id: str,
    user_id: str | None = None,
    attributes: Mapping[str, Any],
    slots: Iterable[str] = (),
    placements: Iterable[str] = (),
    user_sticky: Mapping[str, Assignment] | None = None,
    session_sticky: Mapping[str, Assignment] | None = None,
    forced: Mapping[str, str] | None = None,
    now_ms: int,
    covariate: float = 0.0,
) -> Decisions:
    """Per slot and per placement: the content and what chose it; plus the store's writes.

    `user_sticky` / `session_sticky` are the shopper's assignments read from Redis (experiment
    key -> Assignment); the user's win, the session's are the fallback. `forced` (experiment
    key -> variant key) comes from an admin-keyed request for QA. `covariate` is the shopper's
    pre-exposure behaviour (CUPED), recorded with any new assignment.
    """
    req = _Request(session_id, user_id, attributes, user_sticky or {}, session_sticky or {},
                   forced or {}, now_ms, covariate)
    slot_decisions: dict[str, SlotDecision] = {}
    for slot in slots:
        candidates = compiled.by_slot.get(slot)
        if candidates is None:
            slot_decisions[slot] = SlotDecision(source="unknown")
            continue
        decision = req.from_experiments(candidates, slot)
        if decision is None:
            decision = _from_rules(compiled.rules.get(slot, ()), attributes)
        if decision is None:
            decision = SlotDecision(compiled.defaults.get(slot))
        slot_decisions[slot] = decision
    placement_decisions = {}
    for placement in placements:
        decision = req.from_experiments(compiled.by_placement.get(placement, []), None)
        placement_decisions[placement] = decision or SlotDecision()
    return Decisions(slot_decisions, placement_decisions, req.writes, req.exposures)


def _from_rules(
    rules: Iterable[tuple[str, Condition, Any]], attributes: Mapping[str, Any]
) -> SlotDecision | None:
    for key, condition, content in rules:
        if condition(attributes):
            return SlotDecision(content, "rule", rule=key)
    return None
