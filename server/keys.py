"""Every Redis key Vitrine uses, with its hash tag and lifetime: the one place that names them.

Shopper keys are tagged per shopper, `{u:<user_id>}` for a known user and `{s:<session_id>}`
for an anonymous session, so one recommendation request reads one Redis Cluster slot. Global
keys (the durable event stream, trending counters, the ingest dedup marks) share the `{g}` tag
so that one script can update them atomically.

| key | type | lifetime |
| --- | --- | --- |
| `<p>:{shopper}:recent` | list of msgpack `[item_id, type, ts_ms]`, newest first, capped | session TTL |
| `<p>:{shopper}:bought` | hash item_id → net purchased quantity (returns subtract) | session TTL |
| `<p>:{shopper}:returned` | set of item ids | session TTL |
| `<p>:{shopper}:aff` | hash `s:<category>` → decayed score, `t:<category>` → its time (ms) | session TTL |
| `<p>:{shopper}:ids:<bucket>` | hash event_id → 1, per `now // dedup_ttl` bucket | 2 × dedup TTL |
| `<p>:{g}:stream` | stream of accepted events (field `e`: msgpack Event) | until exported |
| `<p>:{g}:d:<event_id>` | string: the event was accepted | dedup TTL |
| `<p>:{g}:trend:<period>[:<category>]` | zset item_id → forward-decayed score | two periods |
| `<p>:{g}:export` | string: stream id exported last | none |
| `<p>:{g}:export-lock` | string: an export is running (one at a time) | export timeout |

Event ids are checked against the current and the previous `ids` bucket, so a retry is
recognised for at least `dedup_ttl` and the hash stays bounded for a shopper active for years.
"""

from __future__ import annotations

from dataclasses import dataclass

SHOPPER_FIELDS = ("recent", "bought", "returned", "aff")


@dataclass(frozen=True)
class Keys:
    prefix: str = "vt"

    def shopper_tag(self, user_id: str | None, session_id: str | None) -> str:
        if user_id:
            return f"{{u:{user_id}}}"
        if session_id:
            return f"{{s:{session_id}}}"
        raise ValueError("a shopper needs a user_id or a session_id")

    def shopper(self, tag: str) -> list[str]:
        """The shopper's keys in SHOPPER_FIELDS order."""
        return [f"{self.prefix}:{tag}:{name}" for name in SHOPPER_FIELDS]

    def shopper_ids(self, tag: str, bucket: int) -> str:
        """The shopper's applied-event-id hash for one dedup period. Event ids are hash fields,
        never key names: ids are free text, and a key built from two free-text parts could
        collide with another shopper's key."""
        return f"{self.prefix}:{tag}:ids:{bucket}"

    @property
    def stream(self) -> str:
        return f"{self.prefix}:{{g}}:stream"

    @property
    def export_position(self) -> str:
        return f"{self.prefix}:{{g}}:export"

    @property
    def export_lock(self) -> str:
        return f"{self.prefix}:{{g}}:export-lock"

    def dedup(self, event_id: str) -> str:
        return f"{self.prefix}:{{g}}:d:{event_id}"

    def trending(self, period: int, category: str | None = None) -> str:
        base = f"{self.prefix}:{{g}}:trend:{period}"
        return f"{base}:{category}" if category else base
