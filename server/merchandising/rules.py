"""Merchandising rules: the format a merchandiser writes (admin API or a rules file) and its
validation. Pure: no Redis, no aiohttp.

    {"rules": [
      {"id": "summer", "kind": "boost", "match": {"tag": ["summer"]}, "factor": 1.5,
       "placements": ["home"], "segments": ["vip"], "start": "2026-06-01T00:00:00Z"},
      {"id": "partner", "kind": "pin", "item_id": "i0001234", "position": 1, "placements": ["home"]}
    ]}

Kinds: `pin` an item at a position; `boost` (factor > 1) or `bury` (0 < factor < 1) items that
match; `exclude` items that match; `include` only items that match; `price_bounds`; and
`out_of_stock` (`hide: false` shows out-of-stock items; hidden by default, without any rule).
Scope: `placements` (all when absent), `segments` (the shopper's published segment), a
`condition` in GrowthBook's syntax over the targeting attributes (server/experiments), a
schedule (`start`, `end`: RFC 3339 or Unix ms), `enabled`. Among rules that disagree (two
pins on one position, two out-of-stock rules) the higher `priority` wins, then the smaller id.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
import orjson
from msgspec import Meta

from models.catalog import CategoryPath, ItemId, Name, Tag
from server.experiments.conditions import condition_errors
from server.recommend.placements import RULE_PLACEMENTS

RuleId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Placement = Annotated[str, Meta(min_length=1)]
When = int | Annotated[datetime, Meta(tz=True)]  # Unix ms, or RFC 3339 with a time zone
MAX_FACTOR = 100.0
MAX_POSITION = 100


class PriceRange(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    min: Annotated[float, Meta(ge=0)] | None = None
    max: Annotated[float, Meta(ge=0)] | None = None


class Match(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Items a rule acts on: every field given must match (a field's values are alternatives;
    a category matches its sub-categories: `shoes` matches `shoes/running`)."""

    category: Annotated[list[CategoryPath], Meta(min_length=1, max_length=100)] | None = None
    brand: Annotated[list[Name], Meta(min_length=1, max_length=100)] | None = None
    tag: Annotated[list[Tag], Meta(min_length=1, max_length=100)] | None = None
    price: PriceRange | None = None
    item_id: Annotated[list[ItemId], Meta(min_length=1, max_length=1_000)] | None = None


class Rule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True, tag_field="kind"):
    id: RuleId
    placements: list[Placement] | None = None
    segments: Annotated[list[Name], Meta(min_length=1)] | None = None
    condition: dict[str, Any] | None = None
    start: When | None = None
    end: When | None = None
    enabled: bool = True
    priority: int = 0
    note: Annotated[str, Meta(max_length=1_000)] | None = None

    @property
    def kind(self) -> str:
        return type(self).__struct_config__.tag

    @property
    def start_ms(self) -> int | None:
        return _ms(self.start)

    @property
    def end_ms(self) -> int | None:
        return _ms(self.end)


class Pin(Rule, tag="pin"):
    item_id: ItemId
    position: Annotated[int, Meta(ge=1, le=MAX_POSITION)]


class Boost(Rule, tag="boost"):
    match: Match
    factor: Annotated[float, Meta(gt=1, le=MAX_FACTOR)]


class Bury(Rule, tag="bury"):
    match: Match
    factor: Annotated[float, Meta(ge=1 / MAX_FACTOR, lt=1)]


class Exclude(Rule, tag="exclude"):
    match: Match


class Include(Rule, tag="include"):
    match: Match


class PriceBounds(Rule, tag="price_bounds"):
    min: Annotated[float, Meta(ge=0)] | None = None
    max: Annotated[float, Meta(ge=0)] | None = None

    @property
    def match(self) -> Match:
        return Match(price=PriceRange(self.min, self.max))


class OutOfStock(Rule, tag="out_of_stock"):
    hide: bool = True


AnyRule = Pin | Boost | Bury | Exclude | Include | PriceBounds | OutOfStock
KINDS = tuple(t.__struct_config__.tag for t in AnyRule.__args__)
MATCH_KINDS = ("boost", "bury", "exclude", "include", "price_bounds")  # act through item matches
_rule_decoder = msgspec.json.Decoder(AnyRule)
_encode = msgspec.json.Encoder().encode


class RuleError(ValueError):
    """Rules that can't be used; `errors` lists each problem for the 4xx body."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__("; ".join(f"{e['field']}: {e['error']}" for e in errors))
        self.errors = errors


def parse_rules(items: Iterable[Any], *, segments: Iterable[str] | None = None) -> list[AnyRule]:
    """Decode and check rules (JSON-like objects); raises RuleError listing every problem, each
    with the rule's index and id. `segments`: the known segment names, when the served model
    publishes them (a typo then fails instead of never matching)."""
    rules: list[AnyRule] = []
    errors: list[dict[str, Any]] = []
    known = set(segments) if segments is not None else None
    seen: set[str] = set()
    for i, obj in enumerate(items):
        at = f"rules[{i}]"
        rule_id = obj.get("id") if isinstance(obj, Mapping) and isinstance(obj.get("id"), str) else None

        def err(field: str, message: str, i=i, rule_id=rule_id) -> None:
            errors.append({"index": i, "id": rule_id, "field": field, "error": message})

        try:
            rule = msgspec.convert(obj, AnyRule, strict=False)
        except msgspec.ValidationError as exc:
            message, found, where = str(exc).rpartition(" - at `$")
            err(f"{at}{where.rstrip('`')}" if found else at, message if found else str(exc))
            continue
        for field, message in rule_problems(rule, known):
            err(f"{at}.{field}", message)
        if rule.id in seen:
            err(f"{at}.id", f"duplicate id {rule.id!r}")
        seen.add(rule.id)
        rules.append(rule)
    if errors:
        raise RuleError(errors)
    return rules


def rule_problems(rule: AnyRule, segments: set[str] | None = None) -> list[tuple[str, str]]:
    """What msgspec's types can't say: (field, problem) pairs, empty when the rule is usable."""
    out: list[tuple[str, str]] = []
    for j, placement in enumerate(rule.placements or ()):
        if placement not in RULE_PLACEMENTS:
            out.append((f"placements[{j}]",
                        f"unknown placement {placement!r} (one of: {', '.join(RULE_PLACEMENTS)})"))
    if rule.placements is not None and not rule.placements:
        out.append(("placements", "must not be empty (leave it out for every placement)"))
    if segments is not None:
        for j, name in enumerate(rule.segments or ()):
            if name not in segments:
                out.append((f"segments[{j}]",
                            f"unknown segment {name!r} (the model's: {', '.join(sorted(segments))})"))
    if rule.condition is not None:
        for message in condition_errors(rule.condition, "condition"):
            field, _, text = message.partition(": ")
            out.append((field, text))
    if rule.start_ms is not None and rule.end_ms is not None and rule.end_ms <= rule.start_ms:
        out.append(("end", "must be after start"))
    match = getattr(rule, "match", None)
    if isinstance(rule, PriceBounds) and rule.min is None and rule.max is None:
        out.append(("min", "price_bounds needs `min`, `max` or both"))
    elif isinstance(match, Match):
        if all(getattr(match, f) is None for f in match.__struct_fields__):
            out.append(("match", "must name at least one of: " + ", ".join(Match.__struct_fields__)))
        price = match.price
        if price is not None and price.min is None and price.max is None:
            out.append(("match.price", "needs `min`, `max` or both"))
    lo, hi = _bounds(rule)
    if lo is not None and hi is not None and hi < lo:
        out.append(("max", f"must be at least min ({lo:g})"))
    if isinstance(rule, Boost | Bury) and not math.isfinite(rule.factor):
        out.append(("factor", "must be a finite number"))
    return out


def _bounds(rule: AnyRule) -> tuple[float | None, float | None]:
    if isinstance(rule, PriceBounds):
        return rule.min, rule.max
    price = getattr(getattr(rule, "match", None), "price", None)
    return (price.min, price.max) if price is not None else (None, None)


def _ms(when: int | datetime | None) -> int | None:
    if when is None or isinstance(when, int):
        return when
    return int(when.timestamp() * 1000)


def encode_rule(rule: AnyRule) -> bytes:
    return _encode(rule)


def decode_rule(raw: bytes) -> AnyRule:
    return _rule_decoder.decode(raw)


def rule_dict(rule: AnyRule) -> dict[str, Any]:
    return orjson.loads(_encode(rule))


def read_rules_file(path: Path) -> list[Any]:
    """The rule objects of a rules file (`.toml`: `[[rules]]` tables; otherwise JSON, a list or
    `{"rules": [...]}`), unchecked; raises ValueError when the file can't be read or parsed."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the rules file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text.decode()) if path.suffix == ".toml" else orjson.loads(text)
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from None
    return rules_of(data)


def rules_of(data: Any) -> list[Any]:
    """The rule objects of a body or file: one rule, a list, or `{"rules": [...]}`."""
    if isinstance(data, Mapping) and "rules" in data and "kind" not in data:
        data = data["rules"]
    if isinstance(data, Mapping):
        return [data]
    if isinstance(data, list):
        return data
    raise ValueError("expected a rule, a list of rules or {\"rules\": [...]}")
