"""`DELETE /v1/users/{id}`: erase every key and stream entry about a customer, and record a
tombstone so the next export and training leave them out.

In order, so that a failure part-way leaves the customer excluded and a retry completes it:
1. the tombstone: a file for the trainer (`tombstones.py`) and digests of the ids in Redis
   (`{g}:erased`), which the export checks for every event it writes;
2. the unexported stream entries of the customer and of every session linked to them, on the
   shards their events go to, with the accepted marks naming them, and their fired triggers;
3. every key named after them (their slot's keys, their consent mirrors, trigger occasions,
   cart timers, experiment unit marks), then a sweep of their slot for anything left.
Kept: anonymous aggregates (trending counts, experiment counters), and accepted marks of
events already exported (opaque digests that expire within `redis.dedup_ttl_s`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import msgspec
from redis.asyncio.cluster import RedisCluster

from models.tombstones import write_tombstone
from server.settings import Settings
from server.store.keys import Keys

_decode_event = msgspec.msgpack.Decoder(dict).decode
SCAN_BATCH = 5_000
_GLOB = re.compile(r"([*?\[\]\\])")


@dataclass
class Erased:
    user_id: str
    sessions: list[str]
    keys: int = 0
    stream_entries: int = 0
    trigger_entries: int = 0
    tombstone: str = ""
    shards_scanned: list[int] = field(default_factory=list)


async def erase_customer(client, keys: Keys, settings: Settings, *, user_id: str, sessions: list[str],
                         experiments: list[str], tombstones_root, now_ms: int) -> Erased:
    """Erase `user_id` and `sessions` (plus the sessions linked to the user). `client` is
    redis-py (a Redis or a RedisCluster). Raises RedisError/OSError (the retry completes it)."""
    user_tag = Keys.shopper_tag(user_id, None)
    linked = [s.decode() for s in await client.zrange(keys.linked_sessions(user_tag), 0, -1)]
    all_sessions = sorted({*sessions, *linked})
    tags = [user_tag, *(Keys.shopper_tag(None, s) for s in all_sessions)]
    out = Erased(user_id, all_sessions)

    # 1. The tombstone first: whatever happens next, the export and training leave them out.
    out.tombstone = write_tombstone(tombstones_root, user_ids=[user_id], session_ids=all_sessions,
                                    now_ms=now_ms)
    await client.sadd(keys.erased, keys.erased_member("u", user_id),
                      *(keys.erased_member("s", s) for s in all_sessions))

    # 2. Stream entries: the shards their events went to, and the single stream of older versions.
    shards = sorted({keys.shard_of(t) for t in tags})
    out.shards_scanned = shards
    users, session_set = {user_id}, set(all_sessions)
    for shard in [None, *shards]:
        out.stream_entries += await _erase_events(client, keys, shard, users, session_set)
    digests = {keys.shopper_digest(t) for t in tags}
    for shard in shards:
        out.trigger_entries += await _erase_entries(client, keys.triggers(shard),
                                                    lambda f: f.get(b"t", b"").decode() in digests)

    # 3. Keys: named ones, then whatever else their slot holds under their tag.
    bucket = now_ms // (settings.redis.dedup_ttl_s * 1000)
    doomed: list[str] = []
    for tag in tags:
        event_ids = [k.decode() for k in await client.hkeys(keys.conversions_applied(tag))]
        unit = tag[3:-1]
        doomed += keys.shopper_everything(tag, bucket)
        shard = keys.shard_of(tag)
        doomed += [keys.consent_mark(shard, tag), keys.fired(shard, tag)]
        await client.zrem(keys.timers(shard), tag)
        for experiment in experiments:
            doomed += [keys.exposure_counted(experiment, unit), keys.conversion_counted(experiment, unit),
                       *(keys.revenue_counted(experiment, unit, e) for e in event_ids)]
    for key in doomed:
        out.keys += await client.delete(key)
    for tag in tags:
        for key in await _left_in_slot(client, keys, tag):
            out.keys += await client.delete(key)
    return out


async def _erase_events(client, keys: Keys, shard: int | None, users: set[str], sessions: set[str]) -> int:
    """Delete the stream entries of these shoppers, and the accepted marks that name them."""
    stream = keys.export_stream(shard)
    doomed, marks = [], []
    start = "-"
    while True:
        rows = await client.xrange(stream, min=start, count=SCAN_BATCH)
        for entry_id, fields in rows:
            try:
                event = _decode_event(fields[b"e"])
            except (msgspec.DecodeError, KeyError):
                continue
            user, session = event.get("user_id"), event.get("session_id")
            if user in users or session in sessions:
                doomed.append(entry_id)
                if shard is not None and isinstance(event.get("event_id"), str):
                    marks.append(keys.accepted(shard, Keys.shopper_tag(user, session), event["event_id"]))
        if len(rows) < SCAN_BATCH:
            break
        start = "(" + rows[-1][0].decode()
    deleted = 0
    for i in range(0, len(doomed), 1000):
        deleted += await client.xdel(stream, *doomed[i:i + 1000])
    for mark in marks:
        await client.delete(mark)
    return deleted


async def _erase_entries(client, stream: str, matches) -> int:
    doomed, start = [], "-"
    while True:
        rows = await client.xrange(stream, min=start, count=SCAN_BATCH)
        doomed += [entry_id for entry_id, fields in rows if matches(fields)]
        if len(rows) < SCAN_BATCH:
            break
        start = "(" + rows[-1][0].decode()
    deleted = 0
    for i in range(0, len(doomed), 1000):
        deleted += await client.xdel(stream, *doomed[i:i + 1000])
    return deleted


async def _left_in_slot(client, keys: Keys, tag: str) -> list[bytes]:
    """Keys under the shopper's tag that no name above covers (a dedup bucket of another
    `dedup_ttl_s`, a key a later version adds): on a cluster the slot's key list (the tag is the
    slot), else a SCAN for the tag's prefix."""
    prefix = f"{keys.prefix}:{tag}:".encode()
    if isinstance(client, RedisCluster):
        slot = client.keyslot(prefix + b"x")
        node = client.get_node_from_key(prefix + b"x")
        found = await client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100_000, target_nodes=node)
        return [k for k in found if k.startswith(prefix)]
    pattern = _GLOB.sub(r"\\\1", prefix.decode()) + "*"
    return [k async for k in client.scan_iter(match=pattern, count=1000)]
