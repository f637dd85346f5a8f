"""Every Redis key Vitrine uses, with its hash tag and lifetime: the one place that names them.

Shopper keys are tagged per shopper, `{u:<user_id>}` for a known user and `{s:<session_id>}`
for an anonymous session, so one recommendation request reads one Redis Cluster slot. Events
also go to one of `shards` stream shards, `{g:<n>}`, chosen by the shopper: each shard's script
appends to its stream, marks the event as accepted and bumps its trending counters atomically,
and no single slot takes every event (on a cluster the shards spread over the masters).

| key | type | lifetime |
| --- | --- | --- |
| `<p>:{shopper}:recent` | list of msgpack `[item_id, type, ts_ms]`, newest first | session TTL |
| `<p>:{shopper}:bought` | hash item_id → net purchased quantity (returns subtract) | session TTL |
| `<p>:{shopper}:returned` | set of item ids (among `bought`'s) | session TTL |
| `<p>:{shopper}:bought_at` | hash item_id → its last purchase or return (ms) | session TTL |
| `<p>:{shopper}:aff` | hash `s:<category>` → decayed score, `t:<category>` → its time (ms) | session TTL |
| `<p>:{shopper}:ids:<bucket>` | hash event digest (8 bytes) → 1, per `now // dedup_ttl` | 2 × dedup TTL |
| `<p>:{g:<n>}:stream` | stream of accepted events (field `e`: msgpack Event) | until exported |
| `<p>:{g:<n>}:dropped` | string: entries the stream's cap dropped unexported | none |
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
| `<p>:{shopper}:consent` | hash `p` (personalization 1/0), `at` (ms), `purposes` (a,b,…) | consent TTL |
| `<p>:{shopper}:plog` | zset msgpack `[ts, item_id, amount, event]` → ts: purchases | purchase log TTL |
| `<p>:{shopper}:trig` | hash `v:<item>` → views `n:since`, `c:<item>` → carted at, `ca`, `pa` | session TTL |
| `<p>:{u:<user_id>}:sessions` | zset session_id → last seen (ms): the customer's sessions | session TTL |
| `<p>:{g:<n>}:consent:<digest>` | string 1/0: the shopper's consent, on their shard | consent TTL |
| `<p>:{g:<n>}:timers` | zset shopper tag → due time (ms) of their cart timer | until due |
| `<p>:{g:<n>}:fired:<digest>` | zset `1:`/`0:` + trigger id → time: fired / suppressed | remember TTL |
| `<p>:{g:<n>}:triggers` | stream of fired triggers (`t`: shopper digest, `j`: JSON) | about maxlen |
| `<p>:{g:<n>}:triggers-sent` | string: id of the shard's trigger delivered last (webhook) | none |
| `<p>:{g}:trigger-lock` | string: the worker processing timers and webhooks | the lease |
| `<p>:{g}:erased` | set `u:`/`s:` + digest of erased ids: the export skips their events | none |
| `<p>:{c}:segment-rules`, `…-version` | the stored segment rules (JSON), their version | none |
| `<p>:{m}:items` | hash item_id → msgpack map of the live catalog's fields set (each value msgpack) | none |
| `<p>:{m}:items:log` | stream: the item ids each catalog write changed (field `ids`, msgpack) | capped |
| `<p>:{m}:rules` | hash rule_id → the merchandising rule (JSON) | none |
| `<p>:{m}:rules:version` | integer bumped by every rule change | none |
| `<p>:{m}:rules:file` | digest of the rules file applied last | none |

Bounds (settings of `redis`): `recent` keeps `recent_cap` entries; `bought` (with `returned`
and `bought_at`) at most 1.25 × `purchases_cap` items and `aff` 1.25 × `affinity_cap`
categories, cut back to the cap in one go (least recent purchases, weakest affinities first);
an `ids` bucket at most `shopper_event_budget` ids; a stream about `stream_maxlen` entries.

Event ids are scoped by shopper (both sides key them by a digest of shopper and event_id), so
one shopper reusing another's event id cannot suppress it. They are checked against the current
and the previous `ids` bucket, so a retry is recognised for at least `dedup_ttl`; a bucket holds
at most `shopper_event_budget` ids (events past it still reach the stream, not the live state),
so a shopper's keys stay bounded however many events they send.

Customers (server/customers/): a `<digest>` naming a shopper in another slot is
`shopper_digest(tag)` (16 bytes of blake2b, hex), never the id itself, so a key name built from
free text can't collide and holds no id. Everything about a shopper is found from their tag
(`shopper_everything`), their shard (`shard_of`) and that digest: erasure deletes it all.

The live catalog and the merchandising rules share one slot, `{m}`: they are written by admin
calls and read by each worker's background refresh (a few small reads a second per worker),
never per request, so one slot carries them without becoming a hot spot.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

# read.lua reads the first four; shopper.lua writes all five.
SHOPPER_FIELDS = ("recent", "bought", "returned", "aff", "bought_at")
# shopper.lua reads `consent` and writes the others (server/customers/).
CUSTOMER_FIELDS = ("consent", "plog", "trig", "sessions")


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

    @staticmethod
    def event_digest(tag: str, event_id: str) -> bytes:
        """16 bytes naming one shopper's event: a digest, not the ids themselves, since two
        free-text parts in one key name could collide; 128 bits make an accidental collision
        negligible at any volume. The shopper's `ids` hash keeps the first 8 bytes (a
        collision among one shopper's few thousand ids a day: ~1e-12)."""
        return hashlib.blake2b(f"{tag}\0{event_id}".encode(), digest_size=16).digest()

    def accepted(self, shard: int, tag: str, event_id: str) -> str:
        return f"{self.prefix}:{{g:{shard}}}:d:{self.event_digest(tag, event_id).hex()}"

    def stream_dropped(self, shard: int) -> str:
        return f"{self.prefix}:{{g:{shard}}}:dropped"

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

    # -- customers: consent, purchases, triggers (server/customers/) ---------------------
    def customer(self, tag: str) -> list[str]:
        """The shopper's customer keys in CUSTOMER_FIELDS order (`sessions` is used for users)."""
        return [f"{self.prefix}:{tag}:{name}" for name in CUSTOMER_FIELDS]

    def consent(self, tag: str) -> str:
        return f"{self.prefix}:{tag}:consent"

    def purchase_log(self, tag: str) -> str:
        return f"{self.prefix}:{tag}:plog"

    def trigger_state(self, tag: str) -> str:
        return f"{self.prefix}:{tag}:trig"

    def linked_sessions(self, tag: str) -> str:
        return f"{self.prefix}:{tag}:sessions"

    @staticmethod
    def shopper_digest(tag: str) -> str:
        return hashlib.blake2b(tag.encode(), digest_size=16).hexdigest()

    def consent_mark(self, shard: int, tag: str) -> str:
        return f"{self.prefix}:{{g:{shard}}}:consent:{self.shopper_digest(tag)}"

    def timers(self, shard: int) -> str:
        return f"{self.prefix}:{{g:{shard}}}:timers"

    def fired(self, shard: int, tag: str) -> str:
        return f"{self.prefix}:{{g:{shard}}}:fired:{self.shopper_digest(tag)}"

    def triggers(self, shard: int) -> str:
        return f"{self.prefix}:{{g:{shard}}}:triggers"

    def triggers_sent(self, shard: int) -> str:
        return f"{self.prefix}:{{g:{shard}}}:triggers-sent"

    @property
    def trigger_lock(self) -> str:
        return f"{self.prefix}:{{g}}:trigger-lock"

    @property
    def erased(self) -> str:
        return f"{self.prefix}:{{g}}:erased"

    @staticmethod
    def erased_member(kind: str, shopper_id: str) -> str:
        """`u:`/`s:` + a digest of an erased user or session id (the id itself is gone)."""
        return f"{kind}:{hashlib.blake2b(shopper_id.encode(), digest_size=16).hexdigest()}"

    @property
    def segment_rules(self) -> str:
        return f"{self.prefix}:{{c}}:segment-rules"

    @property
    def segment_rules_version(self) -> str:
        return f"{self.prefix}:{{c}}:segment-rules-version"

    def shopper_everything(self, tag: str, bucket: int) -> list[str]:
        """Every key named after one shopper in their own slot, for the dedup buckets around
        `bucket` (erasure, consent withdrawal)."""
        return [*self.shopper(tag), *(self.shopper_ids(tag, b) for b in range(bucket - 3, bucket + 2)),
                self.assignments(tag), self.conversions_applied(tag), *self.customer(tag)]

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
