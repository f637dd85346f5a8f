"""Merchandising rules in Redis: a hash of rules (JSON, validated before they get here) and a
version every change bumps. Workers poll the version and reload the whole (small) set when it
moved (server/merchandising/live.py). A change writes the rules before it bumps the version, in
one pipeline on one slot, so a worker that sees the new version reads the new rules."""

from __future__ import annotations

from typing import Any

import orjson

from server.merchandising.rules import AnyRule, encode_rule
from server.settings import RedisSettings
from server.store.keys import Keys
from server.store.records import StoreUnavailable
from server.store.scripts import pipeline
from server.store.wire import ReplyError


class RulesStore:
    def __init__(self, wire, settings: RedisSettings):
        self.wire, self.settings = wire, settings
        self.keys = Keys(settings.prefix, settings.stream_shards)

    async def version(self) -> int:
        return int((await self._run([("GET", self.keys.rules_version)]))[0] or 0)

    async def load(self) -> tuple[int, dict[str, bytes]]:
        """(version, rule id -> stored JSON). The version is read first: a change landing in
        between is read now and again at the next poll, never missed."""
        version, flat = await self._run([("GET", self.keys.rules_version), ("HGETALL", self.keys.rules)])
        return int(version or 0), {k.decode(): v for k, v in zip(flat[::2], flat[1::2], strict=True)}

    async def count(self) -> int:
        return int((await self._run([("HLEN", self.keys.rules)]))[0])

    async def put(self, rules: list[AnyRule], *, remove: list[str] = ()) -> int:
        """Store (create or replace by id) `rules` and remove the ids in `remove`; returns the new
        version."""
        commands: list[tuple] = []
        if remove:
            commands.append(("HDEL", self.keys.rules, *remove))
        if rules:
            flat: list[Any] = []
            for rule in rules:
                flat += [rule.id, encode_rule(rule)]
            commands.append(("HSET", self.keys.rules, *flat))
        commands.append(("INCR", self.keys.rules_version))
        return int((await self._run(commands))[-1])

    async def delete(self, rule_id: str) -> int | None:
        """Remove one rule; the new version, or None when there was no such rule."""
        removed, version = await self._run([("HDEL", self.keys.rules, rule_id),
                                            ("INCR", self.keys.rules_version)])
        return int(version) if removed else None

    async def file_state(self) -> tuple[str | None, list[str]]:
        """The digest and rule ids of the rules file applied last."""
        digest, ids = await self._run([("HGET", self.keys.rules_file, "digest"),
                                       ("HGET", self.keys.rules_file, "ids")])
        return (digest.decode() if digest else None), (orjson.loads(ids) if ids else [])

    async def apply_file(self, digest: str, rules: list[AnyRule], previous_ids: list[str]) -> int:
        """Store a rules file's rules, remove those of the previous file it no longer has, and
        remember it; returns the new version."""
        ids = [r.id for r in rules]
        version = await self.put(rules, remove=sorted(set(previous_ids) - set(ids)))
        await self._run([("HSET", self.keys.rules_file, "digest", digest, "ids", orjson.dumps(ids))])
        return version

    async def _run(self, commands: list[tuple]) -> list:
        replies = await pipeline(self.wire, commands, self.settings.timeout_s)
        for command, reply in zip(commands, replies, strict=True):
            if isinstance(reply, ReplyError):
                raise StoreUnavailable(f"Redis refused {command[0]}: {reply}")
        return replies
