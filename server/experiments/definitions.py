"""Experiment and personalization-rule definitions: the document admins write, and its checks.

One `Definitions` document (a JSON file loaded at start, or an admin PUT) holds the page slots,
the experiments and the rules. `validate` returns every problem at once as
`{"field": ..., "error": ...}` items naming where it is, for a 400 body; a refused document
never replaces the running one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from server.experiments.conditions import condition_errors

Status = Literal["draft", "running", "paused", "stopped"]

# Tighter than GrowthBook's 0.99..1.01 band (bucketing.WEIGHT_SUM_*), where its SDKs would
# silently fall back to equal weights: a definition outside this is refused instead.
WEIGHT_TOLERANCE = 1e-3
MAX_VARIANTS = 20
HOUR_MS = 3_600_000
# Keys name Redis keys (`{x:<experiment>}`) and counter fields (`<variant>|units`): no braces,
# no separators, bounded.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class Slot(msgspec.Struct, forbid_unknown_fields=True):
    """A page position whose content Vitrine decides (home hero banner, promo block...)."""

    key: str
    default: Any = None  # content when no experiment or rule applies


class Variant(msgspec.Struct, forbid_unknown_fields=True):
    key: str
    weight: float
    # For a slot: what the storefront renders. For a placement: the recommendation strategy,
    # e.g. {"blend": {...}, "candidates": "faiss", "fallback": "trending"}.
    content: Any = None


class Goal(msgspec.Struct, forbid_unknown_fields=True):
    event_type: str = "purchase"  # the conversion event (an Event `type`)
    revenue: bool = False  # also sum `price * quantity` of those events


class Bandit(msgspec.Struct, forbid_unknown_fields=True):
    """Thompson sampling on the goal's conversion rate (bandit.py)."""

    floor: float = 0.05  # every variant keeps at least this share of new units
    update_every_hours: float = 6.0


class Experiment(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    key: str
    variants: list[Variant]  # the first is the control
    slots: list[str] = []  # the slots it decides...
    placement: str | None = None  # ...or the recommendation placement whose strategy it switches
    coverage: float = 1.0  # share of eligible units included
    status: Status = "draft"
    start: int | None = None  # Unix ms; no new units before
    end: int | None = None  # Unix ms; treated as stopped from then on
    hash_seed: str = ""  # GrowthBook's `seed`: the key when empty
    hash_version: Literal[1, 2] = 2
    hash_attribute: str = "id"  # the attribute whose value is hashed (see targeting.py)
    goal: Goal = msgspec.field(default_factory=Goal)
    attribution_window_hours: float = 72.0
    namespace: tuple[str, float, float] | None = None  # GrowthBook's [id, start, end)
    condition: dict[str, Any] = {}
    # QA: unit id -> variant key, shown to those units, never recorded as exposures
    forced: dict[str, str] = {}
    bandit: Bandit | None = None

    @property
    def seed(self) -> str:
        return self.hash_seed or self.key

    @property
    def weights(self) -> list[float]:
        return [v.weight for v in self.variants]

    @property
    def attribution_window_ms(self) -> int:
        return int(self.attribution_window_hours * HOUR_MS)


class Rule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Personalization with no experiment: a slot's content when a condition holds."""

    key: str
    slot: str
    condition: dict[str, Any] = {}
    content: Any = None
    enabled: bool = True


class Definitions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    version: int = 0  # bumped by the store on every accepted change
    slots: list[Slot] = []
    experiments: list[Experiment] = []
    rules: list[Rule] = []  # first match wins, in this order, after experiments


class DefinitionError(ValueError):
    """A document that can't be used; `errors` is the machine-readable list for the 4xx body."""

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("; ".join(f"{e['field']}: {e['error']}" for e in errors))
        self.errors = errors


def parse_definitions(
    data: bytes | str | dict[str, Any],
    known_slots: Iterable[str] | None = None,
    known_placements: Iterable[str] | None = None,
) -> Definitions:
    """Decode and validate a document, raising DefinitionError with every problem found."""
    try:
        if isinstance(data, dict):
            defs = msgspec.convert(data, Definitions)
        else:
            defs = msgspec.json.decode(data, type=Definitions)
    except msgspec.ValidationError as exc:
        # msgspec names the path as `$.experiments[0].coverage`: keep it as the field
        message = str(exc)
        field, _, where = message.rpartition(" - at `")
        if where:
            raise DefinitionError([{"field": where.rstrip("`"), "error": field}]) from exc
        raise DefinitionError([{"field": "$", "error": message}]) from exc
    except msgspec.DecodeError as exc:
        raise DefinitionError([{"field": "$", "error": f"not JSON: {exc}"}]) from exc
    errors = validate(defs, known_slots, known_placements)
    if errors:
        raise DefinitionError(errors)
    return defs


def validate(
    defs: Definitions,
    known_slots: Iterable[str] | None = None,
    known_placements: Iterable[str] | None = None,
) -> list[dict[str, str]]:
    """Every problem in the document; empty when it can be served.

    Slots must be declared in the document or be in `known_slots`; placements are checked only
    when `known_placements` is given (the model's placements are known to the server).
    """
    errors: list[dict[str, str]] = []
    slots = {s.key for s in defs.slots} | set(known_slots or ())
    placements = set(known_placements) if known_placements is not None else None

    def err(field: str, message: str) -> None:
        errors.append({"field": field, "error": message})

    _check_unique([s.key for s in defs.slots], "slots", err)
    _check_unique([e.key for e in defs.experiments], "experiments", err)
    _check_unique([r.key for r in defs.rules], "rules", err)
    for i, exp in enumerate(defs.experiments):
        _check_experiment(exp, f"experiments[{i}]", slots, placements, err)
    for i, rule in enumerate(defs.rules):
        at = f"rules[{i}]"
        if not rule.key:
            err(f"{at}.key", "must not be empty")
        if rule.slot not in slots:
            err(f"{at}.slot", f"unknown slot {rule.slot!r}")
        for message in condition_errors(rule.condition, f"{at}.condition"):
            field, _, text = message.partition(": ")
            err(field, text)
    return errors


def _check_unique(keys: list[str], where: str, err: Any) -> None:
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key in seen:
            err(f"{where}[{i}].key", f"duplicate key {key!r}")
        seen.add(key)


def _check_experiment(  # noqa: C901 - a flat list of independent checks
    exp: Experiment, at: str, slots: set[str], placements: set[str] | None, err: Any
) -> None:
    if not KEY_PATTERN.match(exp.key):
        err(f"{at}.key", f"must be 1-64 characters of A-Z a-z 0-9 _ . - (got {exp.key[:70]!r})")
    if not 2 <= len(exp.variants) <= MAX_VARIANTS:
        err(f"{at}.variants", f"needs 2 to {MAX_VARIANTS} variants, got {len(exp.variants)}")
    _check_unique([v.key for v in exp.variants], f"{at}.variants", err)
    for j, v in enumerate(exp.variants):
        if not KEY_PATTERN.match(v.key):
            err(f"{at}.variants[{j}].key", f"must be 1-64 characters of A-Z a-z 0-9 _ . - "
                                           f"(got {v.key[:70]!r})")
        if not (math.isfinite(v.weight) and 0 <= v.weight <= 1):
            err(f"{at}.variants[{j}].weight", f"must be between 0 and 1, got {v.weight}")
    total = sum(v.weight for v in exp.variants)
    if exp.variants and not abs(total - 1) <= WEIGHT_TOLERANCE:
        err(f"{at}.variants", f"weights sum to {total:.6g}, not 1 (tolerance {WEIGHT_TOLERANCE})")
    if not exp.slots and exp.placement is None:
        err(f"{at}.slots", "an experiment decides at least one slot or a placement")
    for j, slot in enumerate(exp.slots):
        if slot not in slots:
            err(f"{at}.slots[{j}]", f"unknown slot {slot!r}")
    if exp.placement is not None and placements is not None and exp.placement not in placements:
        err(f"{at}.placement", f"unknown placement {exp.placement!r}")
    if not (math.isfinite(exp.coverage) and 0 <= exp.coverage <= 1):
        err(f"{at}.coverage", f"must be between 0 and 1, got {exp.coverage}")
    if exp.start is not None and exp.end is not None and exp.end <= exp.start:
        err(f"{at}.end", "must be after start")
    if not exp.goal.event_type:
        err(f"{at}.goal.event_type", "must not be empty")
    if not (math.isfinite(exp.attribution_window_hours) and exp.attribution_window_hours > 0):
        err(f"{at}.attribution_window_hours", "must be positive")
    if exp.namespace is not None:
        name, lo, hi = exp.namespace
        if not name:
            err(f"{at}.namespace", "needs an id")
        if not (0 <= lo < hi <= 1):
            err(f"{at}.namespace", f"range [{lo}, {hi}) must satisfy 0 <= start < end <= 1")
    for message in condition_errors(exp.condition, f"{at}.condition"):
        field, _, text = message.partition(": ")
        err(field, text)
    if len(exp.slots) > 1:
        # One variant, several slots: its content names each slot's part
        for j, v in enumerate(exp.variants):
            if v.content is not None and not isinstance(v.content, dict):
                err(f"{at}.variants[{j}].content", "must be an object keyed by slot (several slots)")
    variant_keys = {v.key for v in exp.variants}
    for unit, key in exp.forced.items():
        if key not in variant_keys:
            err(f"{at}.forced.{unit}", f"unknown variant {key!r}")
    if exp.bandit is not None:
        if not 0 <= exp.bandit.floor * len(exp.variants) <= 1:
            err(f"{at}.bandit.floor", "floor times the number of variants must be at most 1")
        if not exp.bandit.update_every_hours > 0:
            err(f"{at}.bandit.update_every_hours", "must be positive")
