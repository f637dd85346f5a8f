"""Every Redis key Vitrine uses, with its hash tag and lifetime: the one place that names them.

Shopper keys are tagged per shopper, `{u:<user_id>}` for a known user and `{s:<session_id>}`
for an anonymous session, so one recommendation request reads one Redis Cluster slot. Events
also go to one of `shards` stream shards, `{g:<n>}`, chosen by the shopper: each shard's script
appends to its stream, marks the event as accepted and bumps its trending counters atomically,
and no single slot takes every event (on a cluster the shards spread over the masters).

| key | type | lifetime |
| --- | --- | --- |
| `<p>:{shopper}:recent` | list of msgpack `[item_id, type, ts_ms]`, newest first, capped | session TTL |
| `<p>:{shopper}:bought` | hash item_id → net purchased quantity (returns subtract) | session TTL |
| `<p>:{shopper}:returned` | set of item ids | session TTL |
| `<p>:{shopper}:aff` | hash `s:<category>` → decayed score, `t:<category>` → its time (ms) | session TTL |
| `<p>:{shopper}:ids:<bucket>` | hash event_id → 1, per `now // dedup_ttl` bucket | 2 × dedup TTL |
| `<p>:{g:<n>}:stream` | stream of accepted events (field `e`: msgpack Event) | until exported |
| `<p>:{g:<n>}:d:<digest>` | string: the event was accepted (digest of shopper, event_id) | dedup TTL |
| `<p>:{g:<n>}:trend:<period>[:<category>]` | zset item_id → forward-decayed score | two periods |
| `<p>:{g:<n>}:export` | string: stream id of the shard exported last | none |
| `<p>:{g}:stream`, `<p>:{g}:export` | the one stream of versions before the shards | until exported |
| `<p>:{g}:export-lock` | string: an export is running (one at a time) | export timeout |
| `<p>:{shopper}:xa` | hash experiment → msgpack Assignment (sticky variant, its conversion) | session TTL |
| `<p>:{shopper}:xe` | hash goal event_id → msgpack of the conversions it caused | 2 × dedup TTL |
| `<p>:{x}:defs`, `<p>:{x}:version` | the experiments document (JSON) and its version counter | none |
| `<p>:{x}:bandit-lock` | a worker is updating bandit weights | a minute |
| `<p>:{x}:bandit-updated` | hash experiment → when its bandit weights were last updated | none |
| `<p>:{x:<experiment>}:c:<day>` | hash `<variant>|<counter>` → sum (units, conversions, revenue…) | none |
| `<p>:{x:<experiment>}:days` | set of the days with counters | none |
| `<p>:{x:<experiment>}:u:<digest>` | a unit's exposure was counted | 400 days |
| `<p>:{x:<experiment>}:cv:<digest>` | a unit's conversion was counted | 400 days |
| `<p>:{x:<experiment>}:r:<digest>` | a goal event's revenue was counted for a unit | window + dedup TTL |
| `<p>:{m}:items` | hash item_id → msgpack map of the live catalog's fields set (each value msgpack) | none |
| `<p>:{m}:items:log` | stream: the item ids each catalog write changed (field `ids`, msgpack) | capped |
| `<p>:{m}:rules` | hash rule_id → the merchandising rule (JSON) | none |
| `<p>:{m}:rules:version` | integer bumped by every rule change | none |
| `<p>:{m}:rules:file` | digest of the rules file applied last | none |

Event ids are scoped by shopper (the `ids` hash, the digest of the accepted mark), so one
shopper reusing another's event id cannot suppress it. They are checked against the current and
the previous `ids` bucket, so a retry is recognised for at least `dedup_ttl` and the hash stays
bounded for a shopper active for years.

The live catalog and the merchandising rules share one slot, `{m}`: they are written by admin
calls and read by each worker's background refresh (a few small reads a second per worker),
never per request, so one slot carries them without becoming a hot spot.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

SHOPPER_FIELDS = ("recent", "bought", "returned", "aff")


@dataclass(frozen=True)
class Keys:
    prefix: str = "vt"
    shards: int = 8

    # -- one shopper's slot -------------------------------------------------------------
    @staticmethod
    def shopper_tag(user_id: str | None, session_id: str | None) -> str:
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

    # -- stream shards ------------------------------------------------------------------
    def shard_of(self, tag: str) -> int:
        """A shopper's events go to one shard, so they stay in order in its stream."""
        return zlib.crc32(tag.encode()) % self.shards

    def stream(self, shard: int) -> str:
        return f"{self.prefix}:{{g:{shard}}}:stream"

    def accepted(self, shard: int, tag: str, event_id: str) -> str:
        # A digest, not the ids themselves: two free-text parts in one key name could collide,
        # and 128 bits make an accidental collision negligible at any volume.
        digest = hashlib.blake2b(f"{tag}\0{event_id}".encode(), digest_size=16).hexdigest()
        return f"{self.prefix}:{{g:{shard}}}:d:{digest}"

    def trending(self, shard: int, period: int, category: str | None = None) -> str:
        base = f"{self.prefix}:{{g:{shard}}}:trend:{period}"
        return f"{base}:{category}" if category else base

    def export_position(self, shard: int | None) -> str:
        """Per shard; `None` is the single stream of versions before the shards."""
        return f"{self.prefix}:{{g}}:export" if shard is None else f"{self.prefix}:{{g:{shard}}}:export"

    def export_stream(self, shard: int | None) -> str:
        return f"{self.prefix}:{{g}}:stream" if shard is None else self.stream(shard)

    @property
    def export_lock(self) -> str:
        return f"{self.prefix}:{{g}}:export-lock"

    # -- experiments ----------------------------------------------------------------------
    def assignments(self, tag: str) -> str:
        return f"{self.prefix}:{tag}:xa"

    def conversions_applied(self, tag: str) -> str:
        return f"{self.prefix}:{tag}:xe"

    @property
    def experiments(self) -> str:
        return f"{self.prefix}:{{x}}:defs"

    @property
    def experiments_version(self) -> str:
        return f"{self.prefix}:{{x}}:version"

    @property
    def bandit_lock(self) -> str:
        return f"{self.prefix}:{{x}}:bandit-lock"

    @property
    def bandit_updated(self) -> str:
        return f"{self.prefix}:{{x}}:bandit-updated"

    def experiment_counters(self, experiment: str, day: int) -> str:
        return f"{self.prefix}:{{x:{experiment}}}:c:{day}"

    def experiment_days(self, experiment: str) -> str:
        return f"{self.prefix}:{{x:{experiment}}}:days"

    def _digest(self, *parts: str) -> str:
        return hashlib.blake2b("\0".join(parts).encode(), digest_size=16).hexdigest()

    def exposure_counted(self, experiment: str, unit: str) -> str:
        return f"{self.prefix}:{{x:{experiment}}}:u:{self._digest(unit)}"

    def conversion_counted(self, experiment: str, unit: str) -> str:
        return f"{self.prefix}:{{x:{experiment}}}:cv:{self._digest(unit)}"

    def revenue_counted(self, experiment: str, unit: str, event_id: str) -> str:
        return f"{self.prefix}:{{x:{experiment}}}:r:{self._digest(unit, event_id)}"

    # -- live catalog and merchandising rules ---------------------------------------------
    @property
    def catalog_items(self) -> str:
        return f"{self.prefix}:{{m}}:items"

    @property
    def catalog_log(self) -> str:
        return f"{self.prefix}:{{m}}:items:log"

    @property
    def rules(self) -> str:
        return f"{self.prefix}:{{m}}:rules"

    @property
    def rules_version(self) -> str:
        return f"{self.prefix}:{{m}}:rules:version"

    @property
    def rules_file(self) -> str:
        return f"{self.prefix}:{{m}}:rules:file"
