"""Export the durable event stream to JSON Lines files the trainer reads (`vitrine train`).

Reads the stream from the last exported position, writes the events in the models/events.py
schema (deduplicated by event_id), fsyncs the file and its directory, and only then records
the new position and trims the exported entries: an acknowledged event is never dropped
before it is on disk. A crash between the file and the position re-exports the same entries
next time (at-least-once); the trainer deduplicates by event_id across files.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from models.events import Event
from server.keys import Keys

_decode = msgspec.msgpack.Decoder(Event).decode
_encode = msgspec.json.Encoder().encode
# Compare-and-delete: release the lock only if it is still ours (it may have expired and been
# taken by another export meanwhile).
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class ExportBusy(RuntimeError):
    """Another export holds the lock: two exports would write the same entries twice."""


async def export_events(client: aioredis.Redis, out_dir: Path, *, prefix: str = "vt",
                        batch: int = 10_000, trim: bool = True,
                        lock_ttl_s: int = 3_600) -> tuple[Path | None, int]:
    """Write every entry not yet exported to `out_dir/events-<first id>_<last id>.jsonl`.

    Returns (path, events written), or (None, 0) when there was nothing new. Raises
    ExportBusy when another export is running, RedisError/OSError when Redis or the disk fail
    (nothing is trimmed then)."""
    keys = Keys(prefix)
    token = secrets.token_hex(8)
    if not await client.set(keys.export_lock, token, nx=True, ex=lock_ttl_s):
        raise ExportBusy(f"another export is running (lock {keys.export_lock}); retry later")
    try:
        return await _export_locked(client, keys, out_dir, batch=batch, trim=trim)
    finally:
        await client.eval(_RELEASE, 1, keys.export_lock, token)


async def _export_locked(client: aioredis.Redis, keys: Keys, out_dir: Path, *, batch: int,
                         trim: bool) -> tuple[Path | None, int]:
    start = (await client.get(keys.export_position) or b"0-0").decode()
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".events-{os.getpid()}-{secrets.token_hex(4)}.jsonl.part"
    seen: set[str] = set()
    written, first, last = 0, None, start
    try:
        with tmp.open("wb") as f:
            while True:
                rows = await client.xrange(keys.stream, min=f"({last}", count=batch)
                if not rows:
                    break
                for entry_id, fields in rows:
                    event = _decode(fields[b"e"])
                    if event.event_id not in seen:  # a retried ingest may have added it twice
                        seen.add(event.event_id)
                        f.write(_encode(event) + b"\n")
                        written += 1
                    last = entry_id.decode()
                    first = first or last
            f.flush()
            os.fsync(f.fileno())
        if written == 0:
            tmp.unlink()
            return None, 0
        # Named by the entry range: unique per export, and a re-export of the same range after
        # a crash replaces the file with the same content instead of adding a copy.
        path = out_dir / f"events-{first}_{last}.jsonl"
        os.replace(tmp, path)
        _fsync_dir(out_dir)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    await client.set(keys.export_position, last)
    if trim:
        await client.xtrim(keys.stream, minid=last, approximate=False)  # entries before `last`
        await client.xdel(keys.stream, last)
    return path, written


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("events", help="export the event stream to JSON Lines for training")
    p.add_argument("action", choices=("export",))
    p.add_argument("--out", type=Path, required=True, help="directory for the .jsonl files")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL"),
                   help="Redis to export from (default: $REDIS_URL, else the embedded one)")
    p.add_argument("--data-dir", type=Path, default=Path("var"),
                   help="data directory of the embedded Redis (when no URL is given)")
    p.add_argument("--prefix", default="vt", help="key prefix the server was run with")
    p.add_argument("--keep", action="store_true", help="don't trim exported entries from the stream")
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from server.embedded_redis import EmbeddedRedisError
    from server.redis_client import open_redis

    async def run() -> tuple[Path | None, int]:
        async with open_redis(args.redis_url, args.data_dir, timeout_s=10.0) as client:
            return await export_events(client, args.out, prefix=args.prefix, trim=not args.keep)

    try:
        path, n = asyncio.run(run())
    except ExportBusy as exc:
        print(f"vitrine: {exc}", file=sys.stderr)
        return 1
    except (RedisError, OSError, EmbeddedRedisError) as exc:
        print(f"vitrine: cannot export: {exc}", file=sys.stderr)
        return 2
    print(f"exported {n:,} events to {path}" if n else "nothing new to export")
    return 0
