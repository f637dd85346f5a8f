"""Export the durable event streams into the Parquet event archive the trainer reads
(`vitrine train --archive`, `vitrine retrain`), exactly once.

Each stream shard (and the single stream of versions before the shards) has its own archive
under the root, `<root>/shard-<n>/` (models/archive.py: parts by UTC day, a `_position` commit
point). Per shard: resume after the archive's committed position, read a batch of entries,
`archive.write_batch` them (durable when it returns), and only then trim them from the stream.
A kill at any point and a rerun leave every acknowledged event in the archive exactly once: a
batch killed before its commit is redone (its partial files deleted), one killed after its
commit but before the trim is trimmed at the next start. Entries are archived as they were
accepted, not re-validated: an event a later version's bounds would refuse was acknowledged.
Erased shoppers' entries (the digests `DELETE /v1/users/{id}` keeps in `<p>:{g}:erased`) are
left out, whenever they arrived.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import msgspec

from models import archive
from server.store.keys import Keys

_decode = msgspec.msgpack.Decoder(dict).decode
# Compare-and-delete: release the lock only if it is still ours (it may have expired and been
# taken by another export meanwhile).
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class ExportBusy(RuntimeError):
    """Another export holds the lock: two exports would write the same entries twice."""


def shard_root(root: str | Path, shard: int | None) -> str:
    return f"{str(root).rstrip('/')}/{archive.SHARD_PREFIX}{'legacy' if shard is None else shard}"


async def export_events(client, root: str | Path, keys: Keys, *, batch: int = 10_000, trim: bool = True,
                        lock_ttl_s: int = 3_600) -> dict[str, int]:
    """Archive every entry not yet archived, from every shard; returns the events archived per
    shard root (only shards with new ones). `client` is redis-py (a Redis or a RedisCluster).
    Raises ExportBusy
    when another export is running, RedisError/OSError when Redis or the storage fail (nothing
    of the failed batch is trimmed then)."""
    token = secrets.token_hex(8)
    if not await client.set(keys.export_lock, token, nx=True, ex=lock_ttl_s):
        raise ExportBusy(f"another export is running (lock {keys.export_lock}); retry later")
    try:
        # Erased shoppers (DELETE /v1/users/{id}) are left out, whenever their events arrived.
        erased = {m.decode() for m in await client.smembers(keys.erased)}
        written = {}
        for shard in (None, *range(keys.shards)):
            sub = shard_root(root, shard)
            n = await _export_shard(client, keys, shard, sub, batch=batch, trim=trim, erased=erased)
            if n:
                written[sub] = n
        return written
    finally:
        await client.eval(_RELEASE, 1, keys.export_lock, token)


def is_erased(event: dict, erased: set[str]) -> bool:
    user, session = event.get("user_id"), event.get("session_id")
    return bool(erased) and ((isinstance(user, str) and Keys.erased_member("u", user) in erased) or (
        isinstance(session, str) and Keys.erased_member("s", session) in erased))


async def _export_shard(client, keys: Keys, shard: int | None, root: str, *, batch: int, trim: bool,
                        erased: set[str]) -> int:
    stream = keys.export_stream(shard)
    position = archive.committed_position(root)
    if position is not None and trim:
        await _trim_through(client, stream, position)  # archived by a run killed before it trimmed
    exported = 0
    while rows := await client.xrange(stream, min=f"({position}" if position else "-", count=batch):
        first, last = rows[0][0].decode(), rows[-1][0].decode()
        events = [e for e in (_decode(fields[b"e"]) for _, fields in rows) if not is_erased(e, erased)]
        archive.write_batch(root, events, first, last)
        # The server's backlog check reads this (server/ops/health.py); the archive's own
        # position is the commit point.
        await client.set(keys.export_position(shard), last)
        if trim:
            await _trim_through(client, stream, last)
        position = last
        exported += len(events)
    return exported


async def _trim_through(client, stream: str, position: str) -> None:
    await client.xtrim(stream, minid=position, approximate=False)  # the entries before it
    await client.xdel(stream, position)

