"""LiveRules: each worker's compiled rules, refreshed in the background, and the rules in scope
for a request.

Every `refresh_s` the worker reads the rules' version (one GET); when it moved, it reads every
rule, compiles them (a rule that fails is left out and reported, the others run) and matches
them against the items of the served model off the event loop, then swaps the new set in. A
request then decides the rules in scope from in-process data only (placement, schedule,
segment, targeting condition) and gets them combined (cached per distinct scope).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable

import msgspec

from server.catalog.view import ItemsView
from server.merchandising.applied import Applied
from server.merchandising.compiled import RuleIndex, RuleSet, Shopper
from server.merchandising.rules import AnyRule, decode_rule, encode_rule
from server.merchandising.store import RulesStore
from server.recommend.model import ServingModel
from server.store.records import StoreUnavailable

log = logging.getLogger("vitrine.rules")


class LiveRules:
    def __init__(self, store: RulesStore, refresh_s: float, views: Callable[[], list[ItemsView]]):
        self.store, self.refresh_s, self.views = store, refresh_s, views
        self.ruleset = RuleSet([], 0)
        self.stored: dict[str, bytes] = {}  # the rules as stored, by id (the admin listing)
        self.decode_errors: dict[str, str] = {}
        self._indexes: dict[int, RuleIndex] = {}  # by id(view)
        self.last_success = 0.0
        self.last_error: str | None = None
        self._wake = asyncio.Event()

    # -- requests -----------------------------------------------------------------------
    def applied(self, view: ItemsView, placement: str, now_ms: int,
                shopper: Callable[[], Shopper] | None = None) -> Applied:
        """The rules in scope for one request (placement, schedule, then the shopper's segment
        and targeting conditions, asked only when a rule of the placement needs them)."""
        rs = self.ruleset
        if not rs.by_placement.get(placement):
            return Applied()
        facts = shopper() if shopper is not None and rs.targeted[placement] else None
        chosen = rs.in_scope(placement, now_ms, facts)
        if not chosen:
            return Applied()
        index = self.index(view)
        return Applied(index, index.effect(chosen))

    def index(self, view: ItemsView) -> RuleIndex:
        """The current rules matched against `view`, caught up with the catalog."""
        index = self._indexes.get(id(view))
        if index is None or index.ruleset is not self.ruleset or index.view is not view:
            index = self._indexes[id(view)] = RuleIndex(self.ruleset, view)
            self._forget_old_views()
        index.sync()
        return index

    def prepare(self, model: ServingModel, view: ItemsView) -> None:
        """For a model about to be served (the loader's thread): the rules matched against its
        items, so its first requests don't."""
        self._indexes[id(view)] = RuleIndex(self.ruleset, view)

    def _forget_old_views(self) -> None:
        current = {id(v) for v in self.views()}
        for key in [k for k in self._indexes if k not in current]:
            del self._indexes[key]

    # -- admin --------------------------------------------------------------------------
    def wake(self) -> None:
        """Refresh now (this worker just wrote: its own answers use the change at once)."""
        self._wake.set()

    async def apply_file(self, rules: list[AnyRule]) -> bool:
        """Store a rules file's rules if the file changed since it was applied last (any worker);
        returns whether it was applied."""
        digest = hashlib.sha256(b"\n".join(encode_rule(r) for r in rules)).hexdigest()
        applied, previous = await self.store.file_state()
        if applied == digest:
            return False
        await self.store.apply_file(digest, rules, previous)
        self._wake.set()
        return True

    # -- background refresh -------------------------------------------------------------
    async def refresh(self) -> bool:
        """Reload and recompile the rules when their version moved; returns whether it did."""
        version = await self.store.version()
        if version == self.ruleset.version and self.last_success:
            self.last_success = time.monotonic()
            return False
        version, stored = await self.store.load()
        rules, errors = [], {}
        for rule_id, raw in stored.items():
            try:
                rules.append(decode_rule(raw))
            except msgspec.DecodeError as exc:  # written by a newer or broken writer: skip it
                errors[rule_id] = f"cannot be read: {exc}"
        ruleset = RuleSet(rules, version)
        views = self.views()
        # Matching every rule against every item is O(items x rules): off the event loop. The
        # indexes catch up with catalog changes made meanwhile on their first use.
        indexes = await asyncio.to_thread(lambda: {id(v): RuleIndex(ruleset, v) for v in views})
        self.ruleset, self.stored, self.decode_errors, self._indexes = ruleset, stored, errors, indexes
        for rule_id, message in {**errors, **ruleset.errors}.items():
            log.error("rule %s is not applied: %s", rule_id, message)
        self.last_success = time.monotonic()
        return True

    async def run(self) -> None:
        """Refresh forever (a task of the app); a failure keeps the rules running and retries."""
        while True:
            try:
                await self.refresh()
                self.last_error = None
            except StoreUnavailable as exc:
                if self.last_error is None:
                    log.warning("rules not refreshed, the last ones keep running: %s", exc)
                self.last_error = str(exc)
            except Exception as exc:  # a bug must not stop the rules for good: say it, retry
                log.exception("rules refresh failed, the last ones keep running")
                self.last_error = f"{type(exc).__name__}: {exc}"
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.refresh_s)
