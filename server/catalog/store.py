"""The live catalog in Redis: records merged atomically by `catalog.lua`, and a change log that
every worker's mirror follows (server/catalog/live.py), woken by `Doorbell`.

A record is a msgpack map of the fields set, each value itself msgpack-encoded: the script
merges fields without interpreting values (Lua can't tell `[]` from `{}` or 3.0 from 3). The
log holds only the ids each write changed; a worker reads their current records after it, so
two writers racing on one item still leave every worker with what Redis holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import msgspec
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from models.catalog import ItemRecord, record_from_fields
from server.settings import RedisSettings
from server.store.keys import Keys
from server.store.records import StoreUnavailable
from server.store.scripts import Script, pipeline, run_scripts
from server.store.wire import ReplyError

CATALOG = Script.load("catalog")
_pack = msgspec.msgpack.Encoder().encode
_unpack_value = msgspec.msgpack.decode
LOG_CAP = 10_000  # write batches kept in the log; a worker further behind reloads everything
SCAN_COUNT = 2_000
READ_COUNT = 1_000  # ids per HMGET when following the log
Update = tuple[str, dict[str, Any], list[str]]  # item_id, fields to set, fields to clear


@dataclass(frozen=True)
class Changes:
    position: bytes  # the last log entry read
    ids: list[str]  # items changed since the position asked for, in log order (may repeat)
    gap: bool  # the log was trimmed past the position asked for: reload everything


class CatalogStore:
    def __init__(self, wire, settings: RedisSettings):
        self.wire, self.settings = wire, settings
        self.keys = Keys(settings.prefix, settings.stream_shards)

    # -- writes -------------------------------------------------------------------------
    async def update(self, updates: list[Update]) -> bytes:
        """Merge updates (one script call, atomic); returns the log entry id. Raises
        StoreUnavailable."""
        args: list = [LOG_CAP]
        for item_id, sets, clears in updates:
            # Raw strings, not msgpack's bin type: Redis' Lua msgpack predates bin.
            args += [item_id, msgpack.packb({k: _pack(v) for k, v in sets.items()}, use_bin_type=False),
                     _pack(clears)]
        keys = [self.keys.catalog_items, self.keys.catalog_log]
        return (await run_scripts(self.wire, [(CATALOG, keys, args)], self.settings.timeout_s))[0]

    async def hide(self, item_id: str) -> bytes:
        return await self.update([(item_id, {"hidden": True}, [])])

    # -- reads --------------------------------------------------------------------------
    async def get(self, item_ids: list[str]) -> dict[str, ItemRecord | None]:
        """The current records of `item_ids` (None: nothing set). Raises StoreUnavailable."""
        out: dict[str, ItemRecord | None] = {}
        for start in range(0, len(item_ids), READ_COUNT):
            chunk = item_ids[start:start + READ_COUNT]
            raw = await self._call("HMGET", self.keys.catalog_items, *chunk)
            out.update(zip(chunk, (None if r is None else decode_record(r) for r in raw), strict=True))
        return out

    async def snapshot(self) -> tuple[bytes, dict[str, ItemRecord]]:
        """Every record, with the log position to follow from: taken before the scan, so a
        write during it is read again from the log (re-applying a record is harmless)."""
        position = await self.head()
        records: dict[str, ItemRecord] = {}
        cursor = b"0"
        while True:
            cursor, flat = await self._call("HSCAN", self.keys.catalog_items, cursor, "COUNT", SCAN_COUNT)
            for key, raw in zip(flat[::2], flat[1::2], strict=True):
                records[key.decode("utf-8", "surrogateescape")] = decode_record(raw)
            if cursor in (b"0", 0):
                return position, records

    async def head(self) -> bytes:
        """The id of the newest log entry (`0-0` when the log is empty)."""
        last = await self._call("XREVRANGE", self.keys.catalog_log, "+", "-", "COUNT", 1)
        return last[0][0] if last else b"0-0"

    async def changes(self, after: bytes, count: int = 1_000) -> Changes:
        """Log entries after `after` (at most `count`), in one round trip."""
        log = self.keys.catalog_log
        first, entries = await pipeline(self.wire, [("XRANGE", log, "-", "+", "COUNT", 1),
                                                    ("XRANGE", log, b"(" + after, "+", "COUNT", count)],
                                        self.settings.timeout_s)
        for reply in (first, entries):
            if isinstance(reply, ReplyError):
                raise StoreUnavailable(f"Redis refused XRANGE: {reply}")
        # The log is trimmed from its oldest end: an oldest entry newer than the position means
        # entries after it may be gone. Following closely, a worker never gets there.
        gap = after != b"0-0" and bool(first) and _stream_id(first[0][0]) > _stream_id(after)
        ids: list[str] = []
        for _, fields in entries:
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            ids += [x.decode("utf-8", "surrogateescape") for x in msgpack.unpackb(values[b"ids"], raw=True)]
        return Changes(entries[-1][0] if entries else after, ids, gap)

    async def _call(self, *args) -> Any:
        reply = (await pipeline(self.wire, [args], self.settings.timeout_s))[0]
        if isinstance(reply, ReplyError):
            raise StoreUnavailable(f"Redis refused {args[0]}: {reply}")
        return reply


def decode_record(raw: bytes) -> ItemRecord:
    fields = msgpack.unpackb(raw, raw=True)
    return record_from_fields({k.decode(): _unpack_value(v) for k, v in fields.items()})


def _stream_id(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


class Doorbell:
    """Waits for the catalog's change log to grow: `XREAD BLOCK` on a connection of its own
    (blocking would stall the shared ones). Only a signal: the mirror then reads the changes
    through the store, which also sees a trimmed log. A worker follows a change within a
    round trip or two of its write instead of a poll interval, and idles on one blocked read
    instead of polling (benchmarks/results/catalog_propagation.md)."""

    def __init__(self, url: str, keys: Keys, *, cluster: bool = False, block_s: float = 5.0,
                 timeout_s: float = 1.0):
        options = {"socket_connect_timeout": timeout_s, "socket_timeout": block_s + timeout_s + 1.0}
        self.client = (RedisCluster.from_url(url, **options) if cluster
                       else aioredis.Redis.from_url(url, **options))
        self.log, self.block_ms = keys.catalog_log, int(block_s * 1000)

    async def wait(self, after: bytes) -> bool:
        """Until an entry after `after` exists (True) or the block time passed (False). Raises
        StoreUnavailable."""
        try:
            reply = await self.client.xread({self.log: after}, count=1, block=self.block_ms)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"cannot wait on the catalog log: {exc}") from exc
        return bool(reply)

    async def aclose(self) -> None:
        await self.client.aclose()
