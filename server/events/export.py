"""Export the durable event streams to JSON Lines files the trainer reads (`vitrine train`).

For each stream shard (and the single stream of versions before the shards), reads from the
shard's last exported position, writes the events in the models/events.py schema (deduplicated
by shopper and event_id, as written when accepted), fsyncs the file and its directory, and only
then records the new position and trims the exported entries: an acknowledged event is never
dropped before it is on disk. A crash between the file and the position re-exports the same
entries next time (at-least-once); the trainer deduplicates by shopper and event_id across files.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import msgspec

from models.artifact import fsync_dir
from server.store.keys import Keys

# Entries are written as they were accepted, not re-validated: an event a later version's bounds
# would refuse (a stream written before them) was acknowledged, and must reach the archive.
_decode = msgspec.msgpack.Decoder(dict).decode
_encode = msgspec.json.Encoder().encode
# Compare-and-delete: release the lock only if it is still ours (it may have expired and been
# taken by another export meanwhile).
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class ExportBusy(RuntimeError):
    """Another export holds the lock: two exports would write the same entries twice."""


async def export_events(client, out_dir: Path, keys: Keys, *, batch: int = 10_000, trim: bool = True,
                        lock_ttl_s: int = 3_600) -> list[tuple[Path, int]]:
    """Write every entry not yet exported, one file per shard with new entries:
    `out_dir/events-<shard>-<first id>_<last id>.jsonl`. `client` is redis-py (a Redis or a
    RedisCluster). Returns [(path, events written)]. Raises ExportBusy when another export is
    running, RedisError/OSError when Redis or the disk fail (nothing is trimmed then)."""
    token = secrets.token_hex(8)
    if not await client.set(keys.export_lock, token, nx=True, ex=lock_ttl_s):
        raise ExportBusy(f"another export is running (lock {keys.export_lock}); retry later")
    try:
        erased = {m.decode() for m in await client.smembers(keys.erased)}
        written = []
        for shard in (None, *range(keys.shards)):
            path, n = await _export_shard(client, keys, shard, out_dir, batch=batch, trim=trim, erased=erased)
            if n:
                written.append((path, n))
        return written
    finally:
        await client.eval(_RELEASE, 1, keys.export_lock, token)


def is_erased(event: dict, erased: set[str]) -> bool:
    user, session = event.get("user_id"), event.get("session_id")
    return bool(erased) and ((isinstance(user, str) and Keys.erased_member("u", user) in erased) or (
        isinstance(session, str) and Keys.erased_member("s", session) in erased))


async def _export_shard(client, keys: Keys, shard: int | None, out_dir: Path, *, batch: int,
                        trim: bool, erased: set[str] = frozenset()) -> tuple[Path | None, int]:
    stream, position = keys.export_stream(shard), keys.export_position(shard)
    start = (await client.get(position) or b"0-0").decode()
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".events-{os.getpid()}-{secrets.token_hex(4)}.jsonl.part"
    seen: set[tuple] = set()
    written, first, last = 0, None, start
    try:
        with tmp.open("wb") as f:
            while True:
                rows = await client.xrange(stream, min=f"({last}", count=batch)
                if not rows:
                    break
                for entry_id, fields in rows:
                    event = _decode(fields[b"e"])
                    # Per shopper, as ingest scopes event ids: a retried ingest may have added
                    # it twice; another shopper's event with the same id is another event.
                    user = event.get("user_id")
                    key = ("u", user) if user else ("s", event.get("session_id")), event.get("event_id")
                    if key not in seen and not is_erased(event, erased):
                        seen.add(key)
                        f.write(_encode(event) + b"\n")
                        written += 1
                    last = entry_id.decode()
                    first = first or last
            f.flush()
            os.fsync(f.fileno())
        path = None
        if written == 0:
            tmp.unlink()
            if first is None:
                return None, 0
            # Entries read but none written (all erased shoppers'): moved past and trimmed.
        else:
            # Named by the shard and entry range: unique per export, and a re-export of the same
            # range after a crash replaces the file with the same content instead of adding a copy.
            name = "legacy" if shard is None else str(shard)
            path = out_dir / f"events-{name}-{first}_{last}.jsonl"
            os.replace(tmp, path)
            fsync_dir(out_dir)  # the rename is durable only once the directory entry is on disk
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    await client.set(position, last)
    if trim:
        await client.xtrim(stream, minid=last, approximate=False)  # entries before `last`
        await client.xdel(stream, last)
    return path, written
