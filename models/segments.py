"""Named customer segments from configurable rules: their definition, validation and evaluator.

A rule set is an ordered list of segments, each with conditions on a customer's features
(`models/rfm.py` computes them: recency, tenure, orders and spend, in windows, and RFM scores);
a customer belongs to the first segment whose conditions all hold, so the last one usually has
none and catches everyone else. The trainer assigns segments with `assign_many` over all
customers at once, the server with `assign` for one customer per request: both read the same
rules, so the same customer gets the same segment on both sides.

Rules are data (a TOML or JSON file, docs/customers.md):

    [rfm]
    window_days = 365            # F and M scores count orders and spend in this window

    [[segments]]
    name = "vip"
    label = "VIP"
    when = { recency_days = { lt = 30 }, orders_180d = { gt = 3 }, spend_180d = { gt = 500 } }

A condition whose feature is missing or NaN is false (a customer without a churn score is in
no segment that asks for one).
"""

from __future__ import annotations

import json
import math
import operator
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge,
    "eq": operator.eq, "ne": operator.ne,
}
# Features every customer has (models/rfm.py: customer_features); windowed ones are named
# `orders_<N>d` and `spend_<N>d` for any N in 1..3650 days.
BASE_FIELDS = frozenset({"recency_days", "tenure_days", "orders", "spend", "r", "f", "m",
                         "churn_probability"})
_WINDOW_FIELD = re.compile(r"^(orders|spend)_([0-9]{1,4})d$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_WINDOW_DAYS = 3650


class RuleError(ValueError):
    """A segment rule set is malformed; the message names the rule and the field."""


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: float

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.value)


@dataclass(frozen=True, slots=True)
class SegmentRule:
    name: str
    label: str
    conditions: tuple[Condition, ...]
    description: str = ""

    def matches(self, features: Mapping[str, float]) -> bool:
        nan = math.nan
        return all(c.holds(features.get(c.field, nan)) for c in self.conditions)


@dataclass(frozen=True)
class SegmentRules:
    rules: tuple[SegmentRule, ...]
    rfm_window_days: int = 365

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rules]

    @property
    def windows(self) -> tuple[int, ...]:
        """The windows (days) whose orders and spend the rules read, plus the RFM window: the
        trainer publishes counts for these and the server keeps them up to date."""
        days = {self.rfm_window_days}
        for rule in self.rules:
            for c in rule.conditions:
                if m := _WINDOW_FIELD.match(c.field):
                    days.add(int(m.group(2)))
        return tuple(sorted(days))

    def assign(self, features: Mapping[str, float]) -> str:
        """The name of the first segment whose conditions all hold (RuleError if none does)."""
        for rule in self.rules:
            if rule.matches(features):
                return rule.name
        raise RuleError("no segment matched: the rule set needs a last segment without conditions")

    def assign_many(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """`assign` over arrays of features (one entry per customer): an array of names, with
        "" for customers no rule matched."""
        n = len(next(iter(features.values()))) if features else 0
        out = np.full(n, "", dtype=object)
        free = np.ones(n, dtype=bool)
        for rule in self.rules:
            hit = free.copy()
            for c in rule.conditions:
                column = features.get(c.field)
                if column is None:  # missing feature: the condition is false for everyone
                    hit[:] = False
                    break
                with np.errstate(invalid="ignore"):
                    hit &= OPERATORS[c.op](np.asarray(column, dtype=np.float64), c.value)
            out[hit] = rule.name
            free &= ~hit
        return out

    def find(self, name_or_label: str) -> SegmentRule | None:
        """The segment named `name_or_label` (its name or label, case-insensitive)."""
        key = name_or_label.strip().lower()
        return next((r for r in self.rules if key in (r.name, r.label.lower())), None)

    def as_dict(self) -> dict[str, Any]:
        """The rule set as data (what `parse_rules` reads back; published in the artifact)."""
        segments = []
        for r in self.rules:
            when: dict[str, dict[str, float]] = {}
            for c in r.conditions:
                when.setdefault(c.field, {})[c.op] = c.value
            segments.append({"name": r.name, "label": r.label, "description": r.description, "when": when})
        return {"rfm": {"window_days": self.rfm_window_days}, "segments": segments}


def _condition(where: str, field: str, spec: Any) -> list[Condition]:
    m = _WINDOW_FIELD.match(field)
    if field not in BASE_FIELDS and not (m and 1 <= int(m.group(2)) <= MAX_WINDOW_DAYS):
        raise RuleError(f"{where}: unknown field `{field}` (known: {', '.join(sorted(BASE_FIELDS))}, "
                        f"orders_<N>d, spend_<N>d with N in 1..{MAX_WINDOW_DAYS})")
    if not isinstance(spec, Mapping) or not spec:
        raise RuleError(f"{where}: `{field}` needs a table of operators, e.g. {{ lt = 30 }}")
    out = []
    for op, value in spec.items():
        op = op.removeprefix("$")  # GrowthBook's spelling ($lt) is accepted too
        if op not in OPERATORS:
            raise RuleError(f"{where}: `{field}`: unknown operator `{op}` (use {', '.join(OPERATORS)})")
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise RuleError(f"{where}: `{field}` {op}: the value must be a number, not {value!r}")
        out.append(Condition(field, op, float(value)))
    return out


def parse_rules(data: Mapping[str, Any], *, source: str = "segment rules") -> SegmentRules:
    """Validate rules given as data (a parsed TOML/JSON document); RuleError says what is wrong."""
    if not isinstance(data, Mapping):
        raise RuleError(f"{source}: expected a table with `segments`")
    unknown = set(data) - {"rfm", "segments"}
    if unknown:
        raise RuleError(f"{source}: unknown key(s) {', '.join(sorted(unknown))} (expected rfm, segments)")
    window = (data.get("rfm") or {}).get("window_days", 365)
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_WINDOW_DAYS:
        raise RuleError(f"{source}: rfm.window_days must be a whole number of days in 1..{MAX_WINDOW_DAYS}")
    raw = data.get("segments")
    if not isinstance(raw, list) or not raw:
        raise RuleError(f"{source}: `segments` must be a non-empty list of segments")
    rules, seen = [], set()
    for i, entry in enumerate(raw, 1):
        where = f"{source}: segment {i}"
        if not isinstance(entry, Mapping):
            raise RuleError(f"{where}: expected a table with name and when")
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise RuleError(f"{where}: name must be lower_snake_case (a letter first, ≤ 40), not {name!r}")
        where = f"{source}: segment {i} `{name}`"
        if name in seen:
            raise RuleError(f"{where}: duplicate name")
        extra = set(entry) - {"name", "label", "description", "when"}
        if extra:
            raise RuleError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        if rules and not rules[-1].conditions:
            raise RuleError(f"{where}: unreachable, `{rules[-1].name}` before it has no conditions")
        when = entry.get("when", {})
        if not isinstance(when, Mapping):
            raise RuleError(f"{where}: `when` must be a table of field conditions")
        conditions = tuple(c for field, spec in when.items() for c in _condition(where, field, spec))
        rules.append(SegmentRule(name, str(entry.get("label", name)), conditions,
                                 str(entry.get("description", ""))))
        seen.add(name)
    if rules[-1].conditions:
        raise RuleError(f"{source}: the last segment (`{rules[-1].name}`) must have no conditions, "
                        "so that every customer gets a segment")
    return SegmentRules(tuple(rules), rfm_window_days=window)


def load_rules(path: Path | str) -> SegmentRules:
    """Read and validate a rules file (.toml or .json)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(path.read_text())
        elif path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
        else:
            raise RuleError(f"{path}: segment rules must be a .toml or .json file")
    except (OSError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise RuleError(f"{path}: cannot read segment rules: {exc}") from exc
    return parse_rules(data, source=str(path))


# The defaults. Orders are distinct purchase days (a basket of five items is one order).
DEFAULT_RULES_DATA: dict[str, Any] = {
    "rfm": {"window_days": 365},
    "segments": [
        {"name": "prospect", "label": "Prospect", "description": "no purchase yet",
         "when": {"orders": {"lt": 1}}},
        {"name": "vip", "label": "VIP",
         "description": "bought in the last 30 days, more than 3 orders and 500 spent in 6 months",
         "when": {"recency_days": {"lt": 30}, "orders_180d": {"gt": 3}, "spend_180d": {"gt": 500}}},
        {"name": "new", "label": "New", "description": "first purchase in the last 30 days",
         "when": {"tenure_days": {"lt": 30}}},
        {"name": "loyal", "label": "Loyal",
         "description": "bought in the last 45 days, 4+ orders in 6 months",
         "when": {"recency_days": {"lt": 45}, "orders_180d": {"gte": 4}}},
        {"name": "promising", "label": "Promising", "description": "bought in the last 45 days",
         "when": {"recency_days": {"lt": 45}}},
        {"name": "at_risk", "label": "At risk",
         "description": "3+ orders in the last year but none in 45 days (less than 120)",
         "when": {"recency_days": {"lt": 120}, "orders_365d": {"gte": 3}}},
        {"name": "dormant", "label": "Dormant", "description": "no purchase in 45 days (less than 180)",
         "when": {"recency_days": {"lt": 180}}},
        {"name": "lost", "label": "Lost", "description": "no purchase in 180 days", "when": {}},
    ],
}
DEFAULT_RULES = parse_rules(DEFAULT_RULES_DATA, source="default segment rules")
