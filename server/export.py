"""Export the durable event stream to JSON Lines files the trainer reads (`vitrine train`).

Reads the stream from the last exported position, writes the events in the models/events.py
schema (deduplicated by event_id), fsyncs the file, and only then records the new position
and trims the exported entries: an acknowledged event is never dropped before it is on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import msgspec
import redis.asyncio as aioredis

from models.events import Event
from server.keys import Keys

_decode = msgspec.msgpack.Decoder(Event).decode
_encode = msgspec.json.Encoder().encode


async def export_events(client: aioredis.Redis, out_dir: Path, *, prefix: str = "vt",
                        batch: int = 10_000, trim: bool = True) -> tuple[Path | None, int]:
    """Write everything not yet exported to `out_dir/events-<time>.jsonl`; returns (path, n)."""
    keys = Keys(prefix)
    start = (await client.get(keys.export_position) or b"0-0").decode()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"events-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.jsonl"
    tmp = path.with_suffix(".jsonl.part")
    seen: set[str] = set()
    written, last = 0, start
    with tmp.open("wb") as f:
        while True:
            rows = await client.xrange(keys.stream, min=f"({last}", count=batch)
            if not rows:
                break
            for entry_id, fields in rows:
                event = _decode(fields[b"e"])
                if event.event_id not in seen:
                    seen.add(event.event_id)
                    f.write(_encode(event) + b"\n")
                    written += 1
                last = entry_id.decode()
        f.flush()
        os.fsync(f.fileno())
    if written == 0:
        tmp.unlink()
        return None, 0
    os.replace(tmp, path)
    await client.set(keys.export_position, last)
    if trim:
        await client.xtrim(keys.stream, minid=last, approximate=False)  # entries before `last`
        await client.xdel(keys.stream, last)
    return path, written


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("events", help="export the event stream to JSON Lines for training")
    p.add_argument("action", choices=("export",))
    p.add_argument("--out", type=Path, required=True, help="directory for the .jsonl files")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    p.add_argument("--data-dir", type=Path, default=Path("var"), help="embedded Redis data directory")
    p.add_argument("--keep", action="store_true", help="don't trim exported entries from the stream")
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from server.redis_client import open_redis

    async def run() -> tuple[Path | None, int]:
        async with open_redis(args.redis_url, args.data_dir, timeout_s=10.0) as (client, _):
            return await export_events(client, args.out, trim=not args.keep)

    try:
        path, n = asyncio.run(run())
    except OSError as exc:
        print(f"vitrine: cannot export: {exc}", file=sys.stderr)
        return 2
    print(f"exported {n:,} events to {path}" if n else "nothing new to export")
    return 0
