"""The event archive: the durable event stream, exported to Parquet partitioned by day.

Layout under a root (a local directory, or any pyarrow/fsspec filesystem path such as
`s3://bucket/events` where those are installed):

    <root>/date=YYYY-MM-DD/part-<first stream id>_<last stream id>.parquet
    <root>/_position          the stream id of the last archived entry (the commit point)
    <root>/_tombstones/...    erasure tombstones (models/tombstones.py)

One exported batch is the stream entries `first_id..last_id`; its events go to one file per UTC
day of their `ts`, each named by the batch's range. Exactly once, across crashes:
- a file is written to a temporary name, fsynced and renamed (on object stores, where a PUT is
  atomic, written in place), so a part is either absent or complete;
- `_position` is replaced after every part of the batch is in place: it is the commit point,
  and the exporter resumes after it, so a committed batch is never exported again;
- before its parts, a batch records its name and days in `_pending`; the next batch deletes the
  parts of a pending batch that never committed (its entries are still in the stream, which is
  trimmed only after a commit, and are exported again), so a killed attempt leaves no copy.
Readers deduplicate by `event_id` all the same (a stream may hold one event twice).

`pyarrow` is imported inside the functions: the online install (`vitrine[server]`) has none and
imports this module only for its names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import orjson

from models.archive_fs import ArchiveError, Root, ls, open_root, put, write_parquet
from models.events import Event

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

POSITION = "_position"
SHARD_PREFIX = "shard-"  # <root>/shard-<n>/: the archive of one stream shard
PENDING = "_pending"  # the batch being written: its name and days, until committed
DAY_MS = 86_400_000
_PART_RE = re.compile(r"^part-(\d+-\d+)_(\d+-\d+)\.parquet$")
_DATE_RE = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_STREAM_ID_RE = re.compile(r"^\d+-\d+$")


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """A Redis stream id (`<ms>-<seq>`) as a sortable pair; string order is wrong ("9-0" > "10-0")."""
    if not _STREAM_ID_RE.match(stream_id):
        raise ArchiveError(f"not a stream id: {stream_id!r} (expected <ms>-<seq>)")
    ms, seq = stream_id.split("-")
    return int(ms), int(seq)


def archive_schema() -> pa.Schema:
    """Every part has this schema: the models/events.py fields plus the entry's stream id."""
    import pyarrow as pa

    return pa.schema([
        ("event_id", pa.string()), ("session_id", pa.string()), ("type", pa.string()),
        ("ts", pa.int64()), ("user_id", pa.string()), ("item_id", pa.string()),
        ("category", pa.string()), ("price", pa.float64()), ("quantity", pa.int32()),
        ("channel", pa.string()), ("query", pa.string()), ("stream_id", pa.string()),
    ])


# --- filesystems -------------------------------------------------------------------------------

# --- writing -----------------------------------------------------------------------------------

def committed_position(root: str | Path, *, filesystem: pafs.FileSystem | None = None) -> str | None:
    """The stream id of the last archived entry, or None for an empty archive. An exporter
    resumes after it: entries up to it are archived and may be trimmed from the stream."""
    r = open_root(root, filesystem)
    try:
        with r.fs.open_input_stream(r.join(POSITION)) as f:
            return f.read().decode().strip() or None
    except FileNotFoundError:
        return None


def write_batch(
    root: str | Path,
    events: Sequence[Event | Mapping],
    first_id: str,
    last_id: str,
    *,
    filesystem: pafs.FileSystem | None = None,
) -> list[str]:
    """Archive the stream entries `first_id..last_id` (inclusive), whose events are `events`
    (Events, or their fields as accepted: an exporter passes old entries as they were stored),
    and commit `last_id` as the archive's position. Durable when it returns: the exporter may
    then trim the stream through `last_id`.

    Idempotent: a batch already committed (`last_id` ≤ the position) writes nothing; the parts
    of an attempt killed before its commit are deleted by the next call, so rerunning from the
    committed position never leaves a copy. A range that starts inside the committed one raises
    ArchiveError (the exporter must resume after `committed_position`). Duplicate event_ids in
    the batch (per shopper, as the server scopes them) are written once. Returns the paths of
    the parts written.
    """
    first, last = stream_id_key(first_id), stream_id_key(last_id)
    if first > last:
        raise ArchiveError(f"batch range {first_id}..{last_id} is empty")
    r = open_root(root, filesystem)
    committed = committed_position(root, filesystem=r.fs if filesystem else None)
    if committed is not None:
        done = stream_id_key(committed)
        if last <= done:
            return []
        if first <= done:
            raise ArchiveError(f"batch {first_id}..{last_id} overlaps the archived entries "
                               f"(through {committed}): resume after the committed position")
    _drop_uncommitted(r, committed)
    name = f"part-{first_id}_{last_id}.parquet"
    tables = _tables_by_day(_unique(events))
    # The intent first: if this batch is killed before its commit, the next write_batch
    # finds which parts it left and deletes them (their entries are still in the stream).
    intent = {"name": name, "last_id": last_id, "days": sorted(tables)}
    put(r, r.join(PENDING), lambda out: out.write(orjson.dumps(intent)))
    written = []
    for day, table in tables.items():
        path = r.join(f"date={day}", name)
        put(r, path, lambda out, t=table: write_parquet(t, out))
        written.append(path)
    put(r, r.join(POSITION), lambda out: out.write(last_id.encode() + b"\n"))
    return written


def _drop_uncommitted(r: Root, committed: str | None) -> None:
    """Delete the parts of a batch that was killed before its commit."""
    try:
        with r.fs.open_input_stream(r.join(PENDING)) as f:
            intent = orjson.loads(f.read())
    except FileNotFoundError:
        return
    if committed is not None and stream_id_key(intent["last_id"]) <= stream_id_key(committed):
        return  # committed after all: the crash came between the commit and the next batch
    for day in intent["days"]:
        path = r.join(f"date={day}", intent["name"])
        if r.fs.get_file_info(path).type.name == "File":
            r.fs.delete_file(path)


def _row(event: Event | Mapping) -> dict:
    if isinstance(event, Event):
        return msgspec.to_builtins(event)
    return {"quantity": 1, "channel": "web", **event}  # the fields msgpack omitted at their defaults


def _shopper_key(row: Mapping) -> str:
    """Event ids are scoped by shopper (the server's dedup): `u:<user>`, else `s:<session>`."""
    return f"u:{row['user_id']}" if row.get("user_id") else f"s:{row.get('session_id')}"


def _unique(events: Iterable[Event | Mapping]) -> list[dict]:
    seen: set[tuple[str, str]] = set()
    out = []
    for row in map(_row, events):
        key = (_shopper_key(row), row["event_id"])
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def _tables_by_day(rows: list[dict]) -> dict[str, pa.Table]:
    import pyarrow as pa

    by_day: dict[str, list[dict]] = {}
    for row in rows:
        day = datetime.fromtimestamp(row["ts"] / 1000, UTC).date().isoformat()
        by_day.setdefault(day, []).append(row)
    schema = archive_schema()
    return {day: pa.Table.from_pylist(rows, schema=schema) for day, rows in by_day.items()}


# --- the reference export loop -----------------------------------------------------------------

class StreamSource(Protocol):
    """What an exporter reads from: the durable event stream (Redis in the server)."""

    def read_after(self, position: str | None, count: int) -> list[tuple[str, Event]]:
        """Up to `count` entries with ids after `position` (all when None), oldest first."""
        ...

    def trim_through(self, position: str) -> None:
        """Drop the entries up to and including `position`: they are archived."""
        ...


def export(source: StreamSource, root: str | Path, *, batch: int = 10_000,
           filesystem: pafs.FileSystem | None = None) -> int:
    """Archive every entry of `source` after the committed position, trimming each batch only
    once it is committed. Returns the number of entries exported. Safe to kill at any point and
    rerun: the archive then holds every entry exactly once."""
    position = committed_position(root, filesystem=filesystem)
    if position is not None:
        source.trim_through(position)  # archived by a run killed before it could trim
    exported = 0
    while entries := source.read_after(position, batch):
        first_id, last_id = entries[0][0], entries[-1][0]
        write_batch(root, [event for _, event in entries], first_id, last_id, filesystem=filesystem)
        source.trim_through(last_id)
        position = last_id
        exported += len(entries)
    return exported


# --- reading -----------------------------------------------------------------------------------

def _to_ms(when: datetime | date | int | None, default: int) -> int:
    if when is None:
        return default
    if isinstance(when, int):
        return when
    if not isinstance(when, datetime):
        when = datetime(when.year, when.month, when.day, tzinfo=UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def stream_roots(root: str | Path, *, filesystem: pafs.FileSystem | None = None) -> list[str]:
    """The archives under one root: the root itself, and one per stream shard (`shard-<name>/`,
    each with its own position: a sharded stream's ids are ordered within a shard only)."""
    r = open_root(root, filesystem)
    subs = [name for name in sorted(ls(r, r.path)) if name.startswith(SHARD_PREFIX)]
    base = str(root).rstrip("/")
    return [base, *(f"{base}/{name}" for name in subs)]


def list_parts(root: str | Path, since: datetime | date | int | None = None,
               until: datetime | date | int | None = None, *,
               filesystem: pafs.FileSystem | None = None) -> list[str]:
    """The committed part files whose day may hold events in [since, until): every shard's,
    each in stream order."""
    return [path for sub in stream_roots(root, filesystem=filesystem)
            for path in _list_parts(sub, since, until, filesystem=filesystem)]


def _list_parts(root: str | Path, since: datetime | date | int | None = None,
                until: datetime | date | int | None = None, *,
                filesystem: pafs.FileSystem | None = None) -> list[str]:
    r = open_root(root, filesystem)
    lo, hi = _to_ms(since, 0), _to_ms(until, 2**62)
    committed = committed_position(root, filesystem=filesystem)
    if committed is None:
        return []
    done = stream_id_key(committed)
    parts = []
    for name in ls(r, r.path):
        m = _DATE_RE.match(name)
        if not m:
            continue
        day_start = _to_ms(date.fromisoformat(m.group(1)), 0)
        if day_start + DAY_MS <= lo or day_start >= hi:
            continue  # partition pruning: the whole day is outside the window
        for part in ls(r, r.join(name)):
            pm = _PART_RE.match(part)
            if pm and stream_id_key(pm.group(2)) <= done:  # uncommitted parts are not archived yet
                parts.append((stream_id_key(pm.group(1)), r.join(name, part)))
    return [path for _, path in sorted(parts)]


def read_window(
    root: str | Path,
    since: datetime | date | int | None = None,
    until: datetime | date | int | None = None,
    *,
    tombstones: bool = True,
    filesystem: pafs.FileSystem | None = None,
) -> pa.Table:
    """Archived events with `since` ≤ ts < `until` (datetimes, dates or Unix ms; None = open),
    one row per shopper and event_id (the first archived), in time order. With `tombstones` (the default),
    events of erased users and sessions are left out, and so are the sessions an erased user
    was seen in. The table has `archive_schema()`; `training.readers` reads it as it reads files.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    r = open_root(root, filesystem)
    paths = list_parts(root, since, until, filesystem=r.fs if filesystem else None)
    schema = archive_schema()
    if not paths:
        return schema.empty_table()
    table = ds.dataset(paths, schema=schema, format="parquet", filesystem=r.fs).to_table()
    ts = table["ts"]
    window = pc.and_(pc.greater_equal(ts, _to_ms(since, 0)), pc.less(ts, _to_ms(until, 2**62)))
    table = table.filter(window)
    table = _first_per_event_id(table)
    if tombstones:
        from models.tombstones import read_tombstones

        table = read_tombstones(root, filesystem=filesystem).filter_table(table)
    return table.sort_by([("ts", "ascending")]) if table.num_rows else table.combine_chunks()


def _first_per_event_id(table: pa.Table) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    if table.num_rows == 0:
        return table
    import pyarrow.compute as pc

    # Per shopper, as the server scopes event ids: another shopper reusing an id is another event.
    shopper = pc.if_else(pc.is_valid(table["user_id"]),
                         pc.binary_join_element_wise("u:", table["user_id"], ""),
                         pc.binary_join_element_wise("s:", table["session_id"], ""))
    table = table.append_column("_row", pa.array(np.arange(table.num_rows)))
    table = table.append_column("_shopper", shopper)
    first = table.group_by(["_shopper", "event_id"], use_threads=False).aggregate(
        [("_row", "min")])["_row_min"]
    keep = np.sort(first.to_numpy())
    return table.take(pa.array(keep)).drop_columns(["_row", "_shopper"])


def to_events(table: pa.Table) -> list[Event]:
    """Rows of an archive table back as validated events (for tests and small windows)."""
    decode = msgspec.convert
    rows = table.drop_columns([c for c in ("stream_id",) if c in table.column_names]).to_pylist()
    return [decode({k: v for k, v in row.items() if v is not None}, Event) for row in rows]


def window_days(days: float, until: datetime | None = None) -> tuple[datetime, datetime]:
    """The window [until - days, until) as datetimes (until defaults to now, UTC)."""
    end = until or datetime.now(UTC)
    return end - timedelta(days=days), end


def purge_erased(root: str | Path, *, filesystem: Any = None) -> int:
    """Rewrite the parts that hold erased shoppers' events without them (each part replaced
    atomically under its own name). Readers already leave those events out; this removes them
    from storage. Returns the number of rows removed. Run it while no export is writing."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from models.tombstones import Tombstones, read_tombstones

    stones = read_tombstones(root, filesystem=filesystem)
    if not stones:
        return 0
    r = open_root(root, filesystem)
    paths = list_parts(root, filesystem=filesystem)
    # First pass (two columns): the sessions an erased user was seen in, in any part, since
    # their anonymous events may sit in another part.
    sessions = set(stones.session_ids)
    users = pa.array(sorted(stones.user_ids), pa.string())
    for path in paths if len(users) else []:
        with r.fs.open_input_file(path) as f:
            ids = pq.read_table(f, columns=["user_id", "session_id"])
        hit = pc.fill_null(pc.is_in(ids["user_id"], users), False)
        sessions.update(pc.unique(ids.filter(hit)["session_id"]).to_pylist())
    everything = Tombstones(stones.user_ids, frozenset(sessions))
    removed = 0
    for path in paths:
        with r.fs.open_input_file(path) as f:
            table = pq.read_table(f)
        kept = everything.filter_table(table)
        if kept.num_rows < table.num_rows:
            removed += table.num_rows - kept.num_rows
            put(r, path, lambda out, t=kept: write_parquet(t, out))
    return removed
