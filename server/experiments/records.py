"""What the store keeps for experiments, and the pure arithmetic of updating it.

Per shopper (user id or session id), one record per experiment: the sticky `Assignment`,
written once, at the unit's first exposure, and updated when a goal event converts. Per
experiment and variant (and per day, for trends), `VariantCounters`: additive sums from which
results.py derives every statistic. The store applies `exposure_delta` / `conversion_update`
atomically (a Lua script) so a counter never disagrees with the records it sums.
"""

from __future__ import annotations

import msgspec

DAY_MS = 86_400_000


class Assignment(msgspec.Struct, array_like=True, omit_defaults=True):
    """One unit's sticky variant in one experiment (msgpack/JSON array: small in Redis)."""

    variant: str
    exposed_at: int  # Unix ms of the first exposure: starts the attribution window
    unit: str  # the id exposed and counted (a session's id stays the unit after login)
    pre: float = 0.0  # pre-exposure covariate for CUPED (e.g. purchases in the prior 30 days)
    converted: bool = False
    revenue: float = 0.0  # goal revenue attributed so far


class Exposure(msgspec.Struct, frozen=True):
    """A unit's first exposure to an experiment: write the Assignment, count the unit."""

    experiment: str
    variant: str
    unit: str
    ts: int


class Conversion(msgspec.Struct, frozen=True):
    """A goal event attributed to a unit's variant (for the event stream and the archive)."""

    experiment: str
    variant: str
    unit: str
    event_id: str  # the goal event's id: applying it twice is the pipeline's to prevent
    ts: int
    revenue: float = 0.0


class AssignmentWrite(msgspec.Struct, frozen=True):
    """An Assignment to store under a shopper id (new, or carried from session to user)."""

    owner: str  # "user" or "session": whose record this goes in
    owner_id: str
    experiment: str
    assignment: Assignment


class VariantCounters(msgspec.Struct, kw_only=True):
    """Additive sums over a variant's units (the sufficient statistics of the results)."""

    units: int = 0
    conversions: int = 0  # units that converted at least once
    revenue: float = 0.0  # sum over units of their attributed revenue
    revenue_sq: float = 0.0  # sum over units of (their revenue)^2
    pre: float = 0.0  # sum of the covariate x
    pre_sq: float = 0.0  # sum of x^2
    pre_conv: float = 0.0  # sum of x * converted
    pre_rev: float = 0.0  # sum of x * revenue

    def add(self, other: VariantCounters) -> VariantCounters:
        return VariantCounters(**{f: getattr(self, f) + getattr(other, f) for f in self.__struct_fields__})


def exposure_delta(pre: float = 0.0) -> VariantCounters:
    """Counter increments for one new unit whose covariate is `pre`."""
    return VariantCounters(units=1, pre=pre, pre_sq=pre * pre)


def in_attribution_window(a: Assignment, event_ts: int, window_ms: int) -> bool:
    return a.exposed_at <= event_ts <= a.exposed_at + window_ms


def conversion_update(
    a: Assignment, revenue: float, event_ts: int, window_ms: int
) -> tuple[Assignment, VariantCounters] | None:
    """The updated record and counter increments for one goal event; None when the event falls
    outside the attribution window (or is before exposure). Idempotency is the event
    pipeline's: each event id is applied once."""
    if not in_attribution_window(a, event_ts, window_ms):
        return None
    x = a.pre
    delta = VariantCounters()
    if not a.converted:
        delta.conversions = 1
        delta.pre_conv = x
    if revenue:
        # (r + d)^2 - r^2 keeps sum-of-squares exact over each unit's running total
        delta.revenue = revenue
        delta.revenue_sq = 2 * a.revenue * revenue + revenue * revenue
        delta.pre_rev = x * revenue
    updated = msgspec.structs.replace(a, converted=True, revenue=a.revenue + revenue)
    return updated, delta


def day_of(ts_ms: int) -> int:
    """The UTC day number a delta is filed under for the daily series."""
    return ts_ms // DAY_MS
