"""GrowthBook's condition syntax, compiled once into closures.

Semantics follow GrowthBook's reference SDK (JavaScript `mongrule.ts`) and its published
`cases.json`, including JavaScript's coercions (`{"n": {"$gt": 5}}` matches `"8"`; a missing
attribute reads as null), so a rule written for GrowthBook targets the same shoppers here.
The `growthbook` Python package (4.x) deliberately departs from the cases on mixed-type
comparisons; Vitrine follows the cases, which is what the storefront's JS SDK does.

A condition is compiled when the definitions are loaded (once per version), so a request pays
for dict lookups and comparisons only: no parsing, no regex compilation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from server.experiments._js import (
    js_json,
    js_less,
    js_strict_equal,
    js_to_number,
    js_to_string,
    js_truthy,
    js_type,
    padded_version,
    same_value_zero_in,
)

Predicate = Callable[[Any], bool]
Condition = Callable[[Mapping[str, Any]], bool]

OPERATORS = frozenset({
    "$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$veq", "$vne", "$vlt", "$vlte", "$vgt", "$vgte",
    "$exists", "$in", "$nin", "$ini", "$nini", "$not", "$size", "$elemMatch", "$all", "$alli",
    "$regex", "$regexi", "$notRegex", "$notRegexi", "$type",
})


def _never(_: Any) -> bool:
    return False


def _always(_: Any) -> bool:
    return True


def compile_condition(condition: Mapping[str, Any]) -> Condition:
    """A predicate over an attributes mapping. Unknown operators never match (as in the SDKs);
    `condition_errors` reports them so that definitions using them are refused."""
    if not condition:
        return _always
    return _compile_cond(condition)


def eval_condition(attributes: Mapping[str, Any], condition: Mapping[str, Any]) -> bool:
    """Evaluate without keeping the compiled form (tests, one-off checks)."""
    return compile_condition(condition)(attributes)


def _compile_cond(condition: Mapping[str, Any]) -> Condition:
    checks: list[Condition] = []
    for key, value in condition.items():
        if key == "$or":
            checks.append(_any_of(value))
        elif key == "$nor":
            checks.append(_negate(_any_of(value)))
        elif key == "$and":
            checks.append(_all_of(value))
        elif key == "$not":
            checks.append(_negate(_compile_cond(value)) if isinstance(value, Mapping) else _never)
        elif key == "$savedGroup":
            checks.append(_never)  # saved groups live in GrowthBook's server; Vitrine has none
        else:
            checks.append(_at_path(key, _compile_value(value)))
    if len(checks) == 1:
        return checks[0]
    return lambda obj: all(check(obj) for check in checks)


def _sub_conditions(items: Any) -> list[Condition]:
    if not isinstance(items, list):
        return [_never]
    return [_compile_cond(c) if isinstance(c, Mapping) else _never for c in items]


def _any_of(items: Any) -> Condition:
    subs = _sub_conditions(items)
    if not subs:
        return _always  # an empty $or passes, as in the SDKs
    return lambda obj: any(sub(obj) for sub in subs)


def _all_of(items: Any) -> Condition:
    subs = _sub_conditions(items)
    return lambda obj: all(sub(obj) for sub in subs)


def _negate(pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda x: not pred(x)


def _get_path(obj: Any, parts: tuple[str, ...]) -> Any:
    current = obj
    for part in parts:
        if isinstance(current, Mapping):
            if part not in current:
                return None
            current = current[part]
        elif isinstance(current, list):
            if part == "length":
                current = len(current)
            elif part.isdigit() and int(part) < len(current):
                current = current[int(part)]
            else:
                return None
        else:
            return None
    return current


def _at_path(path: str, pred: Predicate) -> Condition:
    if "." not in path:
        # The common case: one attribute, one dict lookup
        def at_key(obj: Any) -> bool:
            return pred(obj.get(path) if isinstance(obj, Mapping) else None)

        return at_key
    parts = tuple(path.split("."))
    return lambda obj: pred(_get_path(obj, parts))


def _is_operator_object(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(str(k).startswith("$") for k in value)


def _compile_value(expected: Any, insensitive: bool = False) -> Predicate:
    """How one attribute value is tested against a condition value (JS `evalConditionValue`)."""
    if isinstance(expected, str):
        if insensitive:
            lowered = expected.lower()
            return lambda v: js_to_string(v).lower() == lowered
        return lambda v: js_to_string(v) == expected
    if isinstance(expected, bool):
        return lambda v: v is not None and js_truthy(v) == expected
    if isinstance(expected, int | float):
        return lambda v: js_to_number(v) == expected
    if expected is None:
        return lambda v: v is None
    if isinstance(expected, list) or not _is_operator_object(expected):
        text = js_json(expected)
        return lambda v: js_json(v) == text
    preds = [_compile_operator(op, arg) for op, arg in expected.items()]
    if len(preds) == 1:
        return preds[0]
    return lambda v: all(p(v) for p in preds)


def _compile_regex(pattern: Any, flags: int = 0) -> re.Pattern[str] | None:
    if not isinstance(pattern, str):
        return None
    try:
        return re.compile(pattern, flags)
    except re.error:
        return None


def _compile_operator(op: str, arg: Any) -> Predicate:  # noqa: C901 - one branch per operator
    if op == "$eq":
        return lambda v: js_strict_equal(v, arg)
    if op == "$ne":
        return lambda v: not js_strict_equal(v, arg)
    if op == "$lt":
        return lambda v: js_less(v, arg)
    if op == "$gt":
        return lambda v: js_less(arg, v)
    if op == "$lte":
        return lambda v: js_less(v, arg, or_equal=True)
    if op == "$gte":
        return lambda v: js_less(arg, v, or_equal=True)
    if op in ("$veq", "$vne", "$vlt", "$vlte", "$vgt", "$vgte"):
        return _version_operator(op, padded_version(arg))
    if op == "$exists":
        return (lambda v: v is not None) if js_truthy(arg) else (lambda v: v is None)
    if op in ("$in", "$nin", "$ini", "$nini"):
        if not isinstance(arg, list):
            return _never
        contains = _contains_any(arg, insensitive=op in ("$ini", "$nini"))
        return contains if op in ("$in", "$ini") else _negate(contains)
    if op == "$not":
        return _negate(_compile_value(arg))
    if op == "$size":
        length_pred = _compile_value(arg)
        return lambda v: isinstance(v, list) and length_pred(len(v))
    if op == "$elemMatch":
        return _elem_match(arg)
    if op in ("$all", "$alli"):
        return _all_elements(arg, op == "$alli") if isinstance(arg, list) else _never
    if op in ("$regex", "$regexi", "$notRegex", "$notRegexi"):
        rx = _compile_regex(arg, re.IGNORECASE if op.endswith("i") else 0)
        if rx is None:
            return _never
        if op.startswith("$not"):
            return lambda v: rx.search(js_to_string(v)) is None
        return lambda v: rx.search(js_to_string(v)) is not None
    if op == "$type":
        return lambda v: js_type(v) == arg
    return _never  # unknown operator: matches nobody (condition_errors refuses it)


def _version_operator(op: str, expected: str) -> Predicate:
    if op == "$veq":
        return lambda v: padded_version(v) == expected
    if op == "$vne":
        return lambda v: padded_version(v) != expected
    if op == "$vlt":
        return lambda v: padded_version(v) < expected
    if op == "$vlte":
        return lambda v: padded_version(v) <= expected
    if op == "$vgt":
        return lambda v: padded_version(v) > expected
    return lambda v: padded_version(v) >= expected


def _contains_any(options: list[Any], insensitive: bool) -> Predicate:
    def fold(x: Any) -> Any:
        return x.lower() if insensitive and isinstance(x, str) else x

    folded = [fold(o) for o in options]

    def contains(v: Any) -> bool:
        if isinstance(v, list):  # an array attribute matches when the two intersect
            return any(same_value_zero_in(fold(el), folded) for el in v)
        return same_value_zero_in(fold(v), folded)

    return contains


def _elem_match(arg: Any) -> Predicate:
    if _is_operator_object(arg):
        check = _compile_value(arg)
    elif isinstance(arg, Mapping):
        check = _compile_cond(arg)
    else:
        return _never
    return lambda v: isinstance(v, list) and any(el is not None and check(el) for el in v)


def _all_elements(expected: list[Any], insensitive: bool) -> Predicate:
    preds = [_compile_value(e, insensitive) for e in expected]
    return lambda v: isinstance(v, list) and all(any(p(el) for el in v) for p in preds)


def condition_errors(condition: Any, path: str = "condition") -> list[str]:
    """Problems that make a condition unusable, each naming where it is (empty when valid)."""
    if not isinstance(condition, Mapping):
        return [f"{path}: must be an object"]
    errors: list[str] = []
    for key, value in condition.items():
        where = f"{path}.{key}"
        if key in ("$or", "$nor", "$and"):
            if not isinstance(value, list):
                errors.append(f"{where}: must be a list of conditions")
                continue
            for i, sub in enumerate(value):
                errors.extend(condition_errors(sub, f"{where}[{i}]"))
        elif key == "$not":
            errors.extend(condition_errors(value, where))
        elif key.startswith("$") and key != "$groups":
            errors.append(f"{where}: unknown logical operator {key!r}")
        else:
            errors.extend(_value_errors(value, where))
    return errors


def _value_errors(value: Any, where: str) -> list[str]:
    if not _is_operator_object(value):
        return []
    errors: list[str] = []
    for op, arg in value.items():
        at = f"{where}.{op}"
        if op not in OPERATORS:
            errors.append(f"{at}: unknown operator {op!r}")
        elif op in ("$in", "$nin", "$ini", "$nini", "$all", "$alli") and not isinstance(arg, list):
            errors.append(f"{at}: needs a list")
        elif op.startswith(("$regex", "$notRegex")) and _compile_regex(arg) is None:
            errors.append(f"{at}: invalid regular expression {arg!r}")
        elif op in ("$not", "$size"):
            errors.extend(_value_errors(arg, at))
        elif op == "$elemMatch":
            if not isinstance(arg, Mapping):
                errors.append(f"{at}: needs an object")
            elif _is_operator_object(arg):
                errors.extend(_value_errors(arg, at))
            else:
                errors.extend(condition_errors(arg, at))
        elif op == "$type" and arg not in ("string", "number", "boolean", "array", "object", "null"):
            errors.append(f"{at}: unknown type {arg!r}")
    return errors
