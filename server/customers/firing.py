"""Triggers in motion: fired from the events that complete a rule (before those events are
acknowledged) and from cart timers falling due, each written once to its shard's trigger stream
(fire.lua), then delivered to the webhook when one is set.

One worker at a time processes timers and webhook deliveries: the one holding the trigger lock
(a lease renewed every poll; a worker that stops releases it, one that dies loses it after
`triggers.lock_ms`). Timers live in Redis (`{g:n}:timers`), so a restart loses none; an
occasion that fired once never fires again (fire.lua remembers it), so a timer processed twice
(a lease lost mid-way) or a retried event batch fires nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable

import aiohttp
import msgspec
from redis.exceptions import RedisError

from models.events import Event
from server.customers.service import Customers
from server.customers.triggers import (
    CART_ABANDONED,
    FIRST_VISIT,
    VIEWED_NOT_CARTED,
    SuggestedItem,
    Trigger,
    check_cart,
    shopper_of,
    trigger_id,
)
from server.customers.webhook import post
from server.ops.models import Served
from server.recommend.ladder import TrendingSource, recommend
from server.recommend.retrieval import Query
from server.settings import Settings
from server.store.keys import Keys
from server.store.records import IngestResult, LiveSession, StoreUnavailable
from server.store.scripts import Call, Script, run_scripts
from server.store.sessions import SessionStore

log = logging.getLogger("vitrine.triggers")
FIRE = Script.load("fire")
FIRED, ALREADY, SUPPRESSED = 1, 0, 2
OUTCOMES = {FIRED: "fired", ALREADY: "duplicate", SUPPRESSED: "rate_limited"}
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Trigger).decode
# Compare-and-extend / compare-and-delete: the lease is ours only while it holds our token.
_RENEW = ("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
          "end return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0")
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
DUE_BATCH = 100


class TriggerService:
    def __init__(self, customers: Customers, sessions: SessionStore, trending: TrendingSource | None,
                 settings: Settings, served_model: Callable[[], Served | None],
                 on_outcome: Callable[[str, str], None] | None = None):
        self.customers, self.sessions, self.trending = customers, sessions, trending
        self.settings, self.cfg = settings, settings.triggers
        self.served_model = served_model
        self.keys: Keys = sessions.keys
        self.wire, self.client = sessions.wire, customers.store.client
        self.on_outcome = on_outcome or (lambda rule, outcome: None)
        self.token = secrets.token_hex(8)
        self.leader = False

    # -- firing ---------------------------------------------------------------------------------
    def _suggest(self, served: Served | None, user_id: str | None, session_id: str | None,
                 context: list[str], live: LiveSession | None, now_ms: int) -> list[SuggestedItem]:
        if served is None or self.cfg.suggestions == 0:
            return []
        q = Query(placement="email", user_id=user_id, session_id=session_id, k=self.cfg.suggestions,
                  now_ms=now_ms, context_items=context, exclude=frozenset(context))
        ranked = recommend(served.model, served.caches, q, live, self.trending, self.settings.recommend)
        ids = served.model.art.items.ids
        return [SuggestedItem(ids[i], r) for i, r in zip(ranked.items, ranked.reasons, strict=True)]

    def fire_call(self, tag: str, trigger: Trigger | None, now_ms: int, timer_due: int | None = None) -> Call:
        shard = self.keys.shard_of(tag)
        cfg = self.cfg
        return (FIRE, [self.keys.fired(shard, tag), self.keys.triggers(shard), self.keys.timers(shard)],
                [now_ms, trigger.trigger_id if trigger else "", cfg.per_customer, cfg.rate_window_s * 1000,
                 cfg.remember_s * 1000, cfg.stream_maxlen, self.keys.shopper_digest(tag),
                 _encode(trigger) if trigger else b"", tag if timer_due is not None else "",
                 timer_due if timer_due is not None else ""])

    def trigger(self, tag: str, rule: str, occasion: str, now_ms: int, *, items: list[str],
                suggested: list[SuggestedItem], segment: str | None = None) -> Trigger:
        user_id, session_id = shopper_of(tag)
        return Trigger(trigger_id(tag, rule, occasion), rule, now_ms, occasion, user_id, session_id, items,
                       suggested, segment)

    async def _fire(self, calls: list[tuple[str, Call]]) -> int:
        if not calls:
            return 0
        replies = await run_scripts(self.wire, [c for _, c in calls], self.settings.redis.timeout_s)
        fired = 0
        for (rule, _), reply in zip(calls, replies, strict=True):
            if rule:  # a fire.lua call with a trigger (the others retire or move a timer)
                status = int(reply[0])
                self.on_outcome(rule, OUTCOMES[status])
                fired += status == FIRED
        return fired

    async def on_ingest(self, events: list[Event], result: IngestResult, now_ms: int) -> int:
        """Fire what the ingested events completed (signals from shopper.lua). Called before the
        events are acknowledged: a failure answers 503, the retry reports the same signals and
        fires only what didn't fire. Raises StoreUnavailable."""
        if not (self.cfg.enabled and result.signals):
            return 0
        served = self.served_model()
        calls: list[tuple[str, Call]] = []
        visits = []
        for s in result.signals:
            e = events[s.event]
            tag = Keys.shopper_tag(e.user_id, e.session_id)
            if s.kind == "views":
                suggested = self._suggest(served, e.user_id, e.session_id, [s.item], None, now_ms)
                t = self.trigger(tag, VIEWED_NOT_CARTED, s.episode, now_ms, items=[s.item],
                                 suggested=suggested)
                calls.append((VIEWED_NOT_CARTED, self.fire_call(tag, t, now_ms)))
            elif s.kind == "visit" and e.user_id and self.cfg.first_visit:
                visits.append((tag, e, s.episode))
        if visits:
            calls += await self._visits(served, visits, now_ms)
        return await self._fire(calls)

    async def _visits(self, served: Served | None, visits: list, now_ms: int) -> list[tuple[str, Call]]:
        """First visits of customers whose live segment is one the rule names (their purchases
        since the model read in one round trip)."""
        store = self.customers.store
        as_of = self.customers.as_of_ms(served)
        reads = [self.sessions.read_call(e.user_id, None, now_ms, as_of) for _, e, _ in visits]
        replies = await run_scripts(self.wire, reads, self.settings.redis.timeout_s)
        calls = []
        for (tag, e, session), reply in zip(visits, replies, strict=True):
            read = store.parse(reply, [], e.user_id, None)
            scores = self.customers.scores(served, e.user_id, read, now_ms)
            if scores is None or scores.segment not in self.cfg.first_visit:
                continue
            suggested = self._suggest(served, e.user_id, None, [], None, now_ms)
            t = self.trigger(tag, FIRST_VISIT, session, now_ms, items=[], suggested=suggested,
                             segment=scores.segment)
            calls.append((FIRST_VISIT, self.fire_call(tag, t, now_ms)))
        return calls

    # -- timers ---------------------------------------------------------------------------------
    async def process_due(self, now_ms: int) -> int:
        """Decide every cart timer due by `now_ms` (at most DUE_BATCH per shard per call)."""
        reads = [("ZRANGEBYSCORE", self.keys.timers(n), "-inf", now_ms, "WITHSCORES", "LIMIT", 0, DUE_BATCH)
                 for n in range(self.keys.shards)]
        due = await run_scripts(self.wire, reads, self.settings.redis.timeout_s)
        timers = [(m.decode(), int(float(s))) for flat in due
                  for m, s in zip(flat[::2], flat[1::2], strict=True)]
        if not timers:
            return 0
        reads = []
        for tag, _ in timers:
            user_id, session_id = shopper_of(tag)
            reads += [("HGETALL", self.keys.trigger_state(tag)),
                      self.sessions.read_call(user_id, session_id, now_ms)]
        replies = await run_scripts(self.wire, reads, self.settings.redis.timeout_s)
        served = self.served_model()
        after_ms = self.cfg.cart_abandoned_s * 1000
        calls: list[tuple[str, Call]] = []
        for n, (tag, score) in enumerate(timers):
            flat = replies[2 * n]
            state = {k.decode(): v.decode() for k, v in zip(flat[::2], flat[1::2], strict=True)}
            check = check_cart(state, now_ms, after_ms)
            if check.action == "later":
                timers_key = self.keys.timers(self.keys.shard_of(tag))
                calls.append(("", ("ZADD", timers_key, "GT", check.due_ms, tag)))
            elif check.action == "drop" or not self.cfg.enabled or after_ms == 0:
                calls.append(("", self.fire_call(tag, None, now_ms, timer_due=score)))
            else:
                user_id, session_id = shopper_of(tag)
                live = self.sessions.parse_read(replies[2 * n + 1])
                suggested = self._suggest(served, user_id, session_id, check.items, live, now_ms)
                t = self.trigger(tag, CART_ABANDONED, check.occasion, now_ms, items=check.items,
                                 suggested=suggested)
                calls.append((CART_ABANDONED, self.fire_call(tag, t, now_ms, timer_due=score)))
        return await self._fire(calls)

    # -- the worker -----------------------------------------------------------------------------
    async def hold_lock(self) -> bool:
        got = await self.client.eval(_RENEW, 1, self.keys.trigger_lock, self.token, self.cfg.lock_ms)
        self.leader = bool(got)
        return self.leader

    async def release(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.client.eval(_RELEASE, 1, self.keys.trigger_lock, self.token)
        self.leader = False

    async def run(self) -> None:
        """While this worker holds the lock: due timers every poll, and webhook deliveries."""
        poll = self.cfg.poll_ms / 1000
        delivery = asyncio.create_task(self._deliver_loop()) if self.cfg.webhook_url else None
        try:
            while True:
                try:
                    if await self.hold_lock():
                        await self.process_due(int(time.time() * 1000))
                except (StoreUnavailable, RedisError, OSError) as exc:
                    log.warning("trigger timers not processed this round: %s", exc)
                await asyncio.sleep(poll)
        finally:
            if delivery is not None:
                delivery.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await delivery
            await self.release()

    # -- webhook delivery -----------------------------------------------------------------------
    async def _deliver_loop(self) -> None:
        poll = self.cfg.poll_ms / 1000
        async with aiohttp.ClientSession() as session:
            while True:
                delivered = 0
                try:
                    if self.leader:
                        delivered = await self.deliver(session)
                except (RedisError, OSError) as exc:
                    log.warning("trigger delivery paused: %s", exc)
                if not delivered:
                    await asyncio.sleep(poll)

    async def deliver(self, session: aiohttp.ClientSession, batch: int = 50) -> int:
        """POST the triggers fired since the last delivered one, shard by shard, in order; the
        position advances after each (at least once: a crash mid-way re-sends one)."""
        cfg, client = self.cfg, self.client
        secret = cfg.webhook_secret.encode() if cfg.webhook_secret else None
        done = 0
        for shard in range(self.keys.shards):
            position = self.keys.triggers_sent(shard)
            start = (await client.get(position) or b"0-0").decode()
            entries = await client.xrange(self.keys.triggers(shard), min=f"({start}", count=batch)
            for entry_id, fields in entries:
                body = fields[b"j"]
                trigger = _decode(body)
                ok = await post(session, cfg.webhook_url, secret, body, trigger=trigger.trigger_id,
                                attempts=cfg.webhook_attempts, timeout_s=cfg.webhook_timeout_s)
                self.on_outcome(trigger.rule, "delivered" if ok else "undelivered")
                if not ok:
                    log.error("trigger %s (%s) not delivered after %d attempts; skipped", trigger.trigger_id,
                              trigger.rule, cfg.webhook_attempts)
                await client.set(position, entry_id)
                done += 1
                if not self.leader:
                    return done
        return done
