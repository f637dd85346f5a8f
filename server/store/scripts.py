"""Lua scripts on the hot path: loaded from `server/store/lua/`, run with `EVALSHA` in one
pipeline, re-sent as `EVAL` when Redis doesn't know them.

A `NOSCRIPT` reply (Redis restarted, its script cache flushed, a cluster node that never saw
the script) ran nothing, so re-sending only those calls as `EVAL` is exact, and `EVAL` caches
the script for the next `EVALSHA` on that node. No `SCRIPT EXISTS` first: that would be a
second round trip on every call. Any store (sessions, catalog, experiments) declares its
scripts with `Script.load(name)` and runs them with `run_scripts`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from server.store.records import StoreUnavailable
from server.store.wire import ReplyError, WireError

LUA_DIR = Path(__file__).with_name("lua")
log = logging.getLogger("vitrine.store")


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    sha: str

    @classmethod
    def load(cls, name: str) -> Script:
        source = (LUA_DIR / f"{name}.lua").read_text()
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest())

    def command(self, keys: list, args: list) -> tuple:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def eval_command(self, keys: list, args: list) -> tuple:
        return ("EVAL", self.source, len(keys), *keys, *args)


Call = tuple[Script, list, list]  # (script, keys, args)
Item = Call | tuple  # a script call, or a plain command ("HGETALL", key)


def _command(item: Item) -> tuple:
    return item[0].command(item[1], item[2]) if isinstance(item[0], Script) else item


async def pipeline(wire, commands: list[tuple], timeout_s: float) -> list:
    """One round trip (one per node on a cluster) bounded by `timeout_s`. Raises
    StoreUnavailable caused by the TimeoutError or WireError, so callers can tell a slow Redis
    from a gone one."""
    try:
        return await wire.pipeline(commands, timeout_s=timeout_s)
    except (WireError, TimeoutError) as exc:
        raise StoreUnavailable(str(exc) or type(exc).__name__) from exc


async def run_scripts(wire, calls: list[Item], timeout_s: float) -> list:
    """The results of `calls` (script calls and plain commands, mixed), in order, in one round
    trip (one per node on a cluster). Raises StoreUnavailable if Redis is unreachable, slow, or
    refuses a call (its message never carries a script's internals)."""
    results = await pipeline(wire, [_command(c) for c in calls], timeout_s)
    missing = [i for i, r in enumerate(results)
               if isinstance(r, ReplyError) and str(r).startswith("NOSCRIPT")]
    if missing:
        again = await pipeline(wire, [calls[i][0].eval_command(calls[i][1], calls[i][2]) for i in missing],
                               timeout_s)
        for i, result in zip(missing, again, strict=True):
            results[i] = result
    for call, result in zip(calls, results, strict=True):
        if isinstance(result, ReplyError):
            name = call[0].name if isinstance(call[0], Script) else str(call[0])
            log.warning("Redis refused %s: %s", name, result)
            raise StoreUnavailable(_explain(name, result)) from result
    return results


def _explain(name: str, error: ReplyError) -> str:
    text = str(error)
    if text.startswith("MOVED") or text.startswith("CROSSSLOT"):
        return ("Redis is a Redis Cluster but redis.cluster is off: set VITRINE_REDIS_CLUSTER=true "
                f"({text.split(' ')[0]})")
    if text.startswith(("BUSY", "LOADING", "READONLY", "OOM", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN")):
        return f"Redis is not accepting writes now ({text.split(' ')[0]})"
    # Script errors carry line numbers and internals: log them, answer with the name only.
    return f"Redis refused {name}"
