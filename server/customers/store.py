"""Customers in Redis: consent records (the shopper's own and its mirror on their stream
shard), the purchase log read with the shopper's session, and what a profile reads.

Consent is written where each script can read it without leaving its slot: `shopper.lua` reads
the shopper's `consent` hash, `shard.lua` the mirror `{g:n}:consent:<digest>` on the shopper's
stream shard (a Redis Cluster runs a script on one slot only). Both are written by one
pipeline; the caller answers only once both are stored, and a retry writes the same values.
"""

from __future__ import annotations

import time

from server.customers.records import ConsentRecord, CustomerRead, parse_purchases
from server.settings import CustomersSettings, RedisSettings
from server.store.keys import Keys
from server.store.records import StoreUnavailable
from server.store.scripts import run_scripts

# What consent withdrawal deletes: everything behavioural about the shopper in their slot. The
# consent record stays (it is the choice), and so do the linked sessions (erasure needs them).
_KEPT_ON_REFUSAL = ("consent", "sessions")


class CustomerStore:
    def __init__(self, wire, client, redis: RedisSettings, settings: CustomersSettings):
        self.wire, self.client, self.redis, self.settings = wire, client, redis, settings
        self.keys = Keys(redis.prefix, redis.stream_shards)

    # -- the request's read ------------------------------------------------------------------
    # The shopper's consent and purchases since the model come with their live state, in the one
    # read script call (SessionStore.read_call(purchases_after_ms=…)); a signed-in shopper's
    # session record is one more command in the same pipeline (their choice before signing in).
    @staticmethod
    def extra_calls(keys: Keys, user_id: str | None, session_id: str | None) -> list[tuple]:
        if user_id and session_id:
            return [("HMGET", keys.consent(Keys.shopper_tag(None, session_id)), "p", "at", "purposes")]
        return []

    def parse(self, read_reply: list, extra: list, user_id: str | None,
              session_id: str | None) -> CustomerRead:
        """From the read script's reply (with the customer keys) and `extra_calls`' replies."""
        read = CustomerRead(default=self.settings.default_consent,
                            purchases=parse_purchases(read_reply[5]))
        own = ConsentRecord.parse(read_reply[4])
        if user_id:
            read.user_consent = own
            if session_id and extra:
                read.session_consent = ConsentRecord.parse(extra[0])
        else:
            read.session_consent = own
        return read

    # -- consent --------------------------------------------------------------------------------
    def consent_writes(self, tag: str, record: ConsentRecord, now_ms: int) -> list[tuple]:
        ttl = self.settings.consent_ttl_s
        key = self.keys.consent(tag)
        flag = "1" if record.personalization else "0"
        items: list[tuple] = [("HSET", key, *record.stored()), ("EXPIRE", key, ttl),
                              ("SET", self.keys.consent_mark(self.keys.shard_of(tag), tag), flag, "EX", ttl)]
        if not record.personalization:
            bucket = now_ms // (self.redis.dedup_ttl_s * 1000)
            shard = self.keys.shard_of(tag)
            doomed = [k for k in self.keys.shopper_everything(tag, bucket)
                      if k.rsplit(":", 1)[-1] not in _KEPT_ON_REFUSAL]
            items += [("DEL", k) for k in doomed]
            items += [("ZREM", self.keys.timers(shard), tag), ("DEL", self.keys.fired(shard, tag))]
        return items

    async def carry_consent(self, user_id: str | None, read: CustomerRead) -> None:
        """Copy a session's choice to its user on the user's first request with that session,
        so the user's later events (stored under the user) follow it. Best effort: a failure
        leaves the copy to the next request."""
        if not user_id or read.session_consent is None:
            return
        tag = Keys.shopper_tag(user_id, None)
        record = read.session_consent
        try:
            await run_scripts(self.wire, self.consent_writes(tag, record, int(time.time() * 1000)),
                              self.redis.timeout_s)
        except StoreUnavailable:
            return
        read.user_consent = record

    async def set_consent(self, tags: list[str], record: ConsentRecord, now_ms: int) -> None:
        """Store one choice for each shopper tag (a user and their session). Raises
        StoreUnavailable; retrying writes the same."""
        items = [c for tag in tags for c in self.consent_writes(tag, record, now_ms)]
        await run_scripts(self.wire, items, self.redis.timeout_s)
