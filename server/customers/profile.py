"""`GET /v1/users/{id}/profile`: everything Vitrine holds on a customer, read in one round trip,
and why it shows what it shows (the segment rule that matched and the figures it read, the
items due again, the reasons of their recommendations)."""

from __future__ import annotations

import msgspec

from server.customers.records import ConsentRecord, parse_purchases
from server.customers.scores import due_now, due_reason
from server.customers.service import Customers
from server.experiments.store import ExperimentStore
from server.ops.models import Served
from server.store.keys import Keys
from server.store.scripts import run_scripts
from server.store.sessions import SessionStore

_decode_trigger = msgspec.json.Decoder(dict).decode


async def read_profile(customers: Customers, sessions: SessionStore, experiments: ExperimentStore,
                       served: Served | None, user_id: str, now_ms: int) -> dict:
    """The profile of `user_id` (raises StoreUnavailable)."""
    store, keys = customers.store, customers.store.keys
    tag = Keys.shopper_tag(user_id, None)
    shard = keys.shard_of(tag)
    bucket = now_ms // (store.redis.dedup_ttl_s * 1000)
    held = keys.shopper_everything(tag, bucket) + [keys.consent_mark(shard, tag), keys.fired(shard, tag)]
    as_of = customers.as_of_ms(served)
    calls: list = [sessions.read_call(user_id, None, now_ms, as_of),
                   ("ZRANGE", keys.purchase_log(tag), 0, -1), ("HGETALL", keys.trigger_state(tag)),
                   ("ZRANGE", keys.linked_sessions(tag), 0, -1, "WITHSCORES"),
                   *experiments.assignment_reads(user_id, None), ("ZSCORE", keys.timers(shard), tag),
                   ("ZRANGE", keys.fired(shard, tag), 0, -1, "WITHSCORES"),
                   ("XREVRANGE", keys.triggers(shard), "+", "-", "COUNT", 500),
                   *(("PTTL", k) for k in held), *(("TYPE", k) for k in held)]
    replies = await run_scripts(store.wire, calls, store.redis.timeout_s)
    live = sessions.parse_read(replies[0])
    read = store.parse(replies[0], [], user_id, None)
    every, trig, linked, assigned, timer, fired, entries = replies[1:8]
    ttls, types = replies[8:8 + len(held)], replies[8 + len(held):]

    out: dict = {"user_id": user_id, "now_ms": now_ms,
                 "model_version": served.model.version if served else None,
                 "consent": _consent(read.user_consent, store.settings.default_consent)}
    scores = customers.scores(served, user_id, read, now_ms) if read.personalization else None
    published = customers.published(served)
    rules, source = customers.rules.effective(published)
    out["segment"] = {**scores.as_dict(), "rules": source,
                      "published": published.published_segment(user_id) if published else None,
                      "published_as_of_ms": published.as_of_ms if published else None} if scores else None
    out["purchases"] = {"since_model": [_purchase(p) for p in read.purchases],
                        "logged": [_purchase(p) for p in parse_purchases(every)],
                        "published_items": len(published.history(served.model, user_id))
                        if published and served else 0}
    out["buy_again"] = _buy_again(customers, served, user_id, read, now_ms)
    out["live"] = {"affinities": {c: round(v, 4) for c, v in sorted(live.category_affinity.items())},
                   "recent_events": [{"item_id": i, "type": t, "ts": ts} for i, t, ts in live.items],
                   "purchased": sorted(live.purchased), "returned": sorted(live.returned)}
    out["experiments"] = {k: {"variant": a.variant, "exposed_at": a.exposed_at, "converted": a.converted}
                          for k, a in experiments.parse_assignments(assigned).items()}
    out["triggers"] = {
        "state": {k.decode(): v.decode() for k, v in zip(trig[::2], trig[1::2], strict=True)},
        "cart_timer_due_ms": int(float(timer)) if timer is not None else None,
        "occasions": [{"id": m.decode()[2:], "fired": m.startswith(b"1:"), "at_ms": int(float(s))}
                      for m, s in zip(fired[::2], fired[1::2], strict=True)],
        "fired": [_decode_trigger(f[b"j"]) for _, f in _entries(entries, keys.shopper_digest(tag))]}
    out["sessions"] = [{"session_id": s.decode(), "last_seen_ms": int(float(t))}
                       for s, t in zip(linked[::2], linked[1::2], strict=True)]
    out["keys"] = [{"key": k, "type": (t.decode() if isinstance(t, bytes) else str(t)),
                    "ttl_s": None if ttl == -1 else round(ttl / 1000)}
                   for k, ttl, t in zip(held, ttls, types, strict=True) if ttl != -2]
    out["recommendations_explained"] = "GET /v1/recommendations with this user_id: each item says why"
    return out


def _consent(record: ConsentRecord | None, default: bool) -> dict:
    if record is None:
        return {"personalization": default, "source": "default", "at_ms": None, "purposes": []}
    return {**record.as_dict(), "source": "user"}


def _purchase(p: tuple[int, str, float]) -> dict:
    return {"ts": p[0], "item_id": p[1] or None, "amount": round(p[2], 2)}


def _entries(entries: list, digest: str) -> list:
    out = []
    for entry_id, flat in entries or ():
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        if fields.get(b"t", b"").decode() == digest:
            out.append((entry_id, fields))
    return out


def _buy_again(customers: Customers, served: Served | None, user_id: str, read, now_ms: int) -> list[dict]:
    published = customers.published(served)
    if served is None or published is None or not published.consumable_cycles or not read.personalization:
        return []
    purchases = customers.purchases(served, user_id, read)
    last: dict[int, int] = {}
    for item, ts in purchases:
        last[item] = max(ts, last.get(item, ts))
    ids = served.model.art.items.ids
    return [{"item_id": ids[i], "dueness": round(d, 3),
             "reason": due_reason(last[i], float(published.cycles[i]), now_ms)}
            for i, d in due_now(purchases, published.cycles, now_ms, 20)]
