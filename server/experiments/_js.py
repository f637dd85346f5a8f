"""The few JavaScript value semantics GrowthBook's conditions rely on, over JSON values.

GrowthBook's conditions are specified by what its JavaScript SDK does: `value + ""`,
`value * 1`, `<` between a string and a number, `===`, `Array.includes`, `JSON.stringify`.
Attribute values here are JSON values (None, bool, int, float, str, list, dict).
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

_JS_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\Z")
_JS_RADIX = {"0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2}
_JS_SPACE = " \t\n\r\v\f\u00a0\ufeff\u2028\u2029"


def js_number_string(x: float) -> str:
    """`String(number)`: integers without '.0', exponents as JS writes them."""
    if x != x:
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == int(x) and abs(x) < 1e21:
        return str(int(x))
    text = repr(float(x))
    if "e" in text:
        mantissa, exp = text.split("e")
        if -7 < int(exp) < 21:  # JS writes these in fixed notation (0.000001)
            return format(Decimal(text), "f")
        sign = "-" if exp.startswith("-") else "+"
        text = f"{mantissa.removesuffix('.0')}e{sign}{exp.lstrip('+-').lstrip('0') or '0'}"
    return text


def js_to_string(v: Any) -> str:
    """`v + ""` (a missing attribute is null, so "null")."""
    if isinstance(v, str):
        return v
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return js_number_string(v)
    if isinstance(v, list):
        return ",".join("" if el is None else js_to_string(el) for el in v)
    return "[object Object]"


def js_to_number(v: Any) -> float:
    """`v * 1`: JS's ToNumber (NaN when the value is no number)."""
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float):
        return float(v)
    if v is None:
        return 0.0
    if isinstance(v, list):
        return js_to_number(js_to_string(v))
    if not isinstance(v, str):
        return math.nan
    s = v.strip(_JS_SPACE)
    if not s:
        return 0.0
    if _JS_DECIMAL.match(s):
        return float(s)
    if s in ("Infinity", "+Infinity", "-Infinity"):
        return -math.inf if s[0] == "-" else math.inf
    base = _JS_RADIX.get(s[:2])
    if base is not None:
        try:
            return float(int(s[2:], base))
        except ValueError:
            return math.nan
    return math.nan


def _utf16(s: str) -> bytes | str:
    # JS orders strings by UTF-16 code units; Python by code points. They differ only above
    # U+FFFF against U+E000..U+FFFF, so only non-ASCII strings pay for the re-encoding.
    return s if s.isascii() else s.encode("utf-16-be", "surrogatepass")


def js_less(a: Any, b: Any, or_equal: bool = False) -> bool:
    """`a < b` (or `a <= b`) with JS's abstract relational comparison."""
    if isinstance(a, list | dict):
        a = js_to_string(a)
    if isinstance(b, list | dict):
        b = js_to_string(b)
    if isinstance(a, str) and isinstance(b, str):
        ua, ub = _utf16(a), _utf16(b)
        if type(ua) is not type(ub):
            ua, ub = a.encode("utf-16-be", "surrogatepass"), b.encode("utf-16-be", "surrogatepass")
        return ua <= ub if or_equal else ua < ub
    x, y = js_to_number(a), js_to_number(b)
    return x <= y if or_equal else x < y  # NaN compares false either way, as in JS


def _js_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "object"


def js_type(v: Any) -> str:
    """GrowthBook's `$type` names: null, array, boolean, number, string, object."""
    return "array" if isinstance(v, list) else _js_kind(v)


def js_strict_equal(a: Any, b: Any) -> bool:
    """`a === b` between JSON values: arrays and objects are never the same reference."""
    kind = _js_kind(a)
    return kind == _js_kind(b) and kind != "object" and a == b


def same_value_zero_in(v: Any, options: list[Any]) -> bool:
    """`options.includes(v)`: strict equality, except that NaN finds NaN."""
    if v != v:
        return any(o != o for o in options if isinstance(o, float))
    return any(js_strict_equal(v, o) for o in options)


def js_truthy(v: Any) -> bool:
    if isinstance(v, list | dict):
        return True  # JS: every object is truthy, empty or not
    return bool(v) and v == v


def _jsonable(v: Any) -> Any:
    if isinstance(v, float):
        if not math.isfinite(v):
            return None  # JSON.stringify writes NaN and Infinity as null
        return int(v) if v.is_integer() and abs(v) < 1e21 else v
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def js_json(v: Any) -> str:
    """`JSON.stringify(v)`, for GrowthBook's literal equality on arrays and objects."""
    return json.dumps(_jsonable(v), separators=(",", ":"), ensure_ascii=False)


_VERSION_STRIP = re.compile(r"^v|\+.*$")
_VERSION_SPLIT = re.compile(r"[-.]")


def padded_version(v: Any) -> str:
    """GrowthBook's `paddedVersionString`: numeric parts left-padded, so plain string order is
    version order ("1.0.0" > "1.0.0-beta" via a trailing '~')."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        v = js_number_string(v)
    if not v or not isinstance(v, str):
        v = "0"
    return _padded(v)


@lru_cache(maxsize=4096)  # app versions repeat across requests: parse each once
def _padded(v: str) -> str:
    parts = _VERSION_SPLIT.split(_VERSION_STRIP.sub("", v))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(p.rjust(5, " ") if p.isascii() and p.isdigit() else p for p in parts)
