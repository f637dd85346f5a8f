"""The segment rules in force, as every worker sees them: stored in Redis with a version (by
`PUT /v1/admin/segments` or the `customers.segment_rules_file` setting), each worker's parsed
copy refreshed when the version moves (polled), like the experiments document. Without stored
rules the served model's rules apply (those it was trained with), else the defaults."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import orjson
from redis.exceptions import RedisError

from models.segments import DEFAULT_RULES, RuleError, SegmentRules, load_rules, parse_rules
from server.customers.published import PublishedCustomers
from server.store.keys import Keys

log = logging.getLogger("vitrine.customers")


class SegmentRulesSnapshot:
    def __init__(self, client, keys: Keys):
        self.client, self.keys = client, keys
        self.stored: SegmentRules | None = None
        self.version = 0
        self.last_error: str | None = None

    def effective(self, published: PublishedCustomers | None) -> tuple[SegmentRules, str]:
        """(rules, where they come from: `stored`, `model` or `default`)."""
        if self.stored is not None:
            return self.stored, "stored"
        if published is not None and published.rules is not None:
            return published.rules, "model"
        return DEFAULT_RULES, "default"

    async def refresh(self) -> bool:
        """Load the stored rules if their version moved; True when they changed."""
        version = int(await self.client.get(self.keys.segment_rules_version) or 0)
        if version == self.version:
            return False
        raw = await self.client.get(self.keys.segment_rules)
        try:
            rules = parse_rules(orjson.loads(raw), source="stored segment rules") if raw else None
        except (RuleError, orjson.JSONDecodeError) as exc:  # written by another build: keep ours
            self.last_error = str(exc)
            log.error("stored segment rules not loaded: %s", exc)
            return False
        self.stored, self.version = rules, version
        log.info("segment rules version %d: %s", version, ", ".join(rules.names) if rules else "none stored")
        return True

    async def publish(self, rules: SegmentRules | None) -> int:
        """Store validated rules (None: remove them, back to the model's) as the next version;
        every worker serves them within a poll. Returns the version."""
        async with self.client.pipeline(transaction=True) as pipe:  # both keys in the {c} slot
            if rules is None:
                pipe.delete(self.keys.segment_rules)
            else:
                pipe.set(self.keys.segment_rules, orjson.dumps(rules.as_dict()))
            pipe.incr(self.keys.segment_rules_version)
            _, version = await pipe.execute()
        self.stored, self.version = rules, int(version)
        return self.version

    async def load_file(self, path: Path) -> None:
        """The rules of `customers.segment_rules_file`, stored when they differ from the stored
        ones; a bad file is reported and the stored rules stay."""
        try:
            rules = load_rules(path)
        except RuleError as exc:
            self.last_error = str(exc)
            log.error("segment rules file not loaded, keeping the stored rules: %s", exc)
            return
        try:
            await self.refresh()
        except RedisError:
            return
        if self.stored is None or self.stored.as_dict() != rules.as_dict():
            await self.publish(rules)


def parse_body(body: bytes) -> SegmentRules:
    """Rules from a PUT body (JSON, the file's shape). Raises RuleError."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RuleError(f"the body is not JSON: {exc}") from None
    return parse_rules(data, source="segment rules")


def unpublished_windows(rules: SegmentRules, published: PublishedCustomers | None) -> list[str]:
    """Warnings for windows the served model didn't publish counts for: until a training with
    these rules, those counts start from the purchases logged since the model's statistics."""
    known = {int(d) for d in (published.segments.get("windows_days", ()) if published else ())}
    return [f"orders_{d}d/spend_{d}d: the served model publishes no counts for {d} days; until a "
            f"training with these rules they count only purchases since its statistics"
            for d in rules.windows if d not in known]
