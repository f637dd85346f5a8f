"""Erasure tombstones: which user and session ids the trainer must never read again.

TODO(#23, tombstones): switch to `models/tombstones.py`'s `write_tombstone` once it is merged
(wt/loop); this is the same call and the same file format, so callers don't change:

    <root>/_tombstones/<erased_at ms>-<8 hex>.json   {"erased_at": ms, "user_ids": [...],
                                                      "session_ids": [...]}

One file per erasure (never a read-modify-write of a shared file: several server processes
erase concurrently), written whole: a temporary name, fsync, rename, fsync of the directory.
`root` is `customers.tombstones_dir` (the event archive's root) or `data.dir`.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path

import orjson

TOMBSTONES = "_tombstones"


def write_tombstone(root: str | Path, *, user_ids: Iterable[str] = (), session_ids: Iterable[str] = (),
                    now_ms: int | None = None) -> str:
    """Record one erasure request; durable when it returns. Returns the file's path."""
    users, sessions = sorted(set(user_ids)), sorted(set(session_ids))
    if not users and not sessions:
        raise ValueError("an erasure names at least one user or session id")
    erased_at = int(time.time() * 1000) if now_ms is None else now_ms
    body = orjson.dumps({"erased_at": erased_at, "user_ids": users, "session_ids": sessions})
    directory = Path(root) / TOMBSTONES
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{erased_at}-{secrets.token_hex(4)}.json"
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
