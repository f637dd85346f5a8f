"""GrowthBook's bucketing, implemented from its SDK specification.

A storefront running GrowthBook's JavaScript SDK and Vitrine put the same unit in the same
variant: same FNV-1a hash (v1 and v2), same bucket ranges for weights and coverage, same
namespaces. Pinned down by GrowthBook's published `cases.json` (vendored under tests/) and by a
10,000-id comparison with the `growthbook` package.

Implemented here rather than calling the `growthbook` package on the request path, although
its cost would fit (`GrowthBook(attributes).run(experiment)` measured ~13 us per experiment,
benchmarks/results/experiments_decide.md): its run walks steps Vitrine does not use (URL
overrides, filters, sticky-bucket docs, tracking callbacks) and lacks the ones it needs
(user-then-session stickiness, paused experiments, exposures returned as data); the package
brings `cryptography` and `urllib3` into the online install; and 4.x departs from the
published cases on mixed-type comparisons. The functions below are a few dozen lines, ~4 us
for hash + choice, and the package stays the reference the tests compare against.
"""

from __future__ import annotations

from collections.abc import Sequence

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK = 0xFFFFFFFF

# GrowthBook replaces weights that don't sum to 1 within this band with equal weights; Vitrine
# refuses such definitions up front (definitions.py), so both sides bucket on the same ranges.
WEIGHT_SUM_MIN = 0.99
WEIGHT_SUM_MAX = 1.01


def fnv1a32(text: str) -> int:
    """FNV-1a 32-bit over the string's UTF-16 code units, as the JS SDK's `charCodeAt` loop."""
    h = _FNV_OFFSET
    if text.isascii():
        for b in text.encode():
            h = ((h ^ b) * _FNV_PRIME) & _MASK
        return h
    data = text.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(data), 2):
        h = ((h ^ (data[i] | (data[i + 1] << 8))) * _FNV_PRIME) & _MASK
    return h


def gb_hash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's hash of `value` under `seed` into [0, 1); None for an unknown version.

    v1 (the original, biased for some seeds) has 1,000 buckets, v2 has 10,000.
    """
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def equal_weights(n: int) -> list[float]:
    return [1.0 / n] * n if n > 0 else []


def weights_are_valid(weights: Sequence[float], n: int) -> bool:
    return len(weights) == n and WEIGHT_SUM_MIN <= sum(weights) <= WEIGHT_SUM_MAX


def bucket_ranges(
    n: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """One [start, end) range per variant: each variant's slice of [0, 1) shrunk by coverage.

    Shrinking each slice in place (rather than the whole line) is GrowthBook's choice: raising
    coverage later only adds units, it never moves a unit from one variant to another.
    """
    coverage = min(max(coverage, 0.0), 1.0)
    if weights is None or not weights_are_valid(weights, n):
        weights = equal_weights(n)
    ranges = []
    cumulative = 0.0
    for w in weights:
        start = cumulative
        cumulative += w
        ranges.append((start, start + coverage * w))
    return ranges


def choose_variation(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    """Index of the range holding `n`, or -1 when `n` falls outside coverage."""
    for i, (start, end) in enumerate(ranges):
        if start <= n < end:
            return i
    return -1


def in_namespace(unit: str, namespace: tuple[str, float, float]) -> bool:
    """Whether the unit falls in the namespace's [start, end) slice (always hashed with v1)."""
    n = gb_hash("__" + namespace[0], unit, 1)
    return n is not None and namespace[1] <= n < namespace[2]


def hash_string(value: object) -> str:
    """The string GrowthBook hashes for an attribute value: '' when the unit can't be hashed.

    Strings and numbers only, as JS `String(value)` writes them (so 123 and "123" agree).
    """
    if isinstance(value, str):
        return value
    # JS skips falsy ids (0, NaN) as well as booleans, objects and null
    if isinstance(value, bool) or not isinstance(value, int | float) or not value or value != value:
        return ""
    if isinstance(value, float) and abs(value) == float("inf"):
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value) if isinstance(value, int) else repr(value)
