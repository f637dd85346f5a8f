"""Erasure tombstones: the user and session ids whose events must not be trained on any more.

The server writes one small file per erasure request into the archive root; the archive's
readers and the trainer leave those shoppers' events out (and `models.archive.purge_erased`
removes them from the Parquet parts for good):

    <root>/_tombstones/<erased_at ms>-<8 hex>.json   {"erased_at": ms, "user_ids": [...],
                                                      "session_ids": [...]}

One file per request, never a read-modify-write of a shared file, so several server processes
erase concurrently without a lock; each file is written whole (temporary name, fsync, rename).
An erased id stays erased: its events are dropped whatever their time (a storefront may send
an erased shopper's late events with old timestamps). A user's erasure also drops the sessions
that user was seen in, so their anonymous events before login go too.

Local roots need nothing beyond the standard library (the server writes these without
pyarrow); other filesystems go through `models.archive_fs` (pyarrow/fsspec).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import pyarrow as pa

TOMBSTONES = "_tombstones"


@dataclass(frozen=True)
class Tombstones:
    user_ids: frozenset[str] = frozenset()
    session_ids: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.user_ids or self.session_ids)

    def erases(self, user_id: str | None, session_id: str | None) -> bool:
        return (user_id is not None and user_id in self.user_ids) or (
            session_id is not None and session_id in self.session_ids)

    def filter_table(self, table: pa.Table) -> pa.Table:
        """Rows of an events table (user_id, session_id columns) not erased, with the sessions
        an erased user was seen in erased too."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if not self or table.num_rows == 0:
            return table
        users = pa.array(sorted(self.user_ids), pa.string())
        by_user = pc.fill_null(pc.is_in(table["user_id"], users), False)
        seen_sessions = pc.unique(table.filter(by_user)["session_id"]).to_pylist()
        sessions = pa.array(sorted(self.session_ids | set(seen_sessions)), pa.string())
        erased = pc.or_(by_user, pc.fill_null(pc.is_in(table["session_id"], sessions), False))
        return table.filter(pc.invert(erased))


def write_tombstone(
    root: str | Path,
    *,
    user_ids: Iterable[str] = (),
    session_ids: Iterable[str] = (),
    now_ms: int | None = None,
    filesystem: Any = None,
) -> str:
    """Record one erasure request; durable when it returns. Returns the file's path."""
    users, sessions = sorted(set(user_ids)), sorted(set(session_ids))
    if not users and not sessions:
        raise ValueError("an erasure names at least one user or session id")
    erased_at = int(time.time() * 1000) if now_ms is None else now_ms
    body = orjson.dumps({"erased_at": erased_at, "user_ids": users, "session_ids": sessions})
    name = f"{erased_at}-{secrets.token_hex(4)}.json"
    if filesystem is None and "://" not in str(root):
        directory = Path(root) / TOMBSTONES
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{name}.tmp"
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / name)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return str(directory / name)
    from models.archive_fs import open_root, put

    r = open_root(root, filesystem)
    path = r.join(TOMBSTONES, name)
    put(r, path, lambda out: out.write(body))
    return path


def read_tombstones(root: str | Path, *, filesystem: Any = None) -> Tombstones:
    """Every erased user and session id recorded under `root` (empty when there are none)."""
    users: set[str] = set()
    sessions: set[str] = set()
    for body in _bodies(root, filesystem):
        record = orjson.loads(body)
        users.update(record.get("user_ids", ()))
        sessions.update(record.get("session_ids", ()))
    return Tombstones(frozenset(users), frozenset(sessions))


def _bodies(root: str | Path, filesystem: Any) -> list[bytes]:
    if filesystem is None and "://" not in str(root):
        directory = Path(root) / TOMBSTONES
        if not directory.is_dir():
            return []
        return [p.read_bytes() for p in sorted(directory.glob("*.json")) if not p.name.startswith(".")]
    from models.archive_fs import ls, open_root

    r = open_root(root, filesystem)
    out = []
    for name in sorted(ls(r, r.join(TOMBSTONES))):
        if name.endswith(".json") and not name.startswith("."):
            with r.fs.open_input_stream(r.join(TOMBSTONES, name)) as f:
                out.append(f.read())
    return out
