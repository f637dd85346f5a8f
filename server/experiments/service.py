"""The experiments feature as the app holds it: the document snapshot, the store, the bandit's
schedule, and the few operations the routes and the event path call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from models.events import Event
from server.experiments import bandit
from server.experiments.decide import Decisions
from server.experiments.definitions import Definitions
from server.experiments.records import VariantCounters
from server.experiments.snapshot import ExperimentSnapshot
from server.experiments.store import ExperimentStore
from server.ops.models import Served
from server.store.records import StoreUnavailable
from server.store.scripts import run_scripts
from server.store.sessions import SessionStore

log = logging.getLogger("vitrine.experiments")
BANDIT_CHECK_S = 60.0


class Experiments:
    def __init__(self, store: ExperimentStore, sessions: SessionStore, snapshot: ExperimentSnapshot,
                 served_model: Callable[[], Served | None]):
        self.store, self.sessions, self.snapshot = store, sessions, snapshot
        self.served_model = served_model

    async def write(self, decisions: Decisions) -> None:
        items = self.store.exposure_writes(decisions.writes, decisions.exposures)
        if items:
            await run_scripts(self.store.wire, items, self.store.settings.timeout_s)

    async def publish(self, defs: Definitions) -> Definitions:
        return await self.snapshot.publish(defs)

    async def attribute(self, events: list[Event]) -> int:
        """Goal events of stored events to their experiments; raises StoreUnavailable."""
        running = self.snapshot.running(int(time.time() * 1000))
        return await self.store.attribute(events, running) if running else 0

    async def results(self, key: str) -> dict:
        """Statistics of one experiment (KeyError if unknown; ModuleNotFoundError without scipy)."""
        from server.experiments import results

        exp = next((x for x in self.snapshot.definitions.experiments if x.key == key), None)
        if exp is None:
            raise KeyError(key)
        by_day = await self.store.counters(key)
        keys = [v.key for v in exp.variants]
        total = {k: VariantCounters() for k in keys}
        for day in by_day.values():
            for k, c in day.items():
                if k in total:
                    total[k] = total[k].add(c)
        analysis = results.analyze(keys, [total[k] for k in keys], exp.weights, revenue=exp.goal.revenue)
        series = results.daily_series(keys, sorted((d, [c.get(k, VariantCounters()) for k in keys])
                                                   for d, c in by_day.items()), exp.weights)
        import msgspec

        return {"experiment": key, "status": exp.status, "variants": keys, "weights": exp.weights,
                "goal": msgspec.to_builtins(exp.goal), "results": msgspec.to_builtins(analysis),
                "daily": msgspec.to_builtins(series), "bandit": exp.bandit is not None}

    async def update_bandits(self) -> bool:
        """New Thompson weights for bandit experiments due an update, as one new document
        version. One worker at a time (a lock in Redis); returns whether it published."""
        defs = self.snapshot.definitions
        bandits = [x for x in defs.experiments if x.bandit is not None and x.status == "running"]
        if not bandits:
            return False
        client, keys = self.store.client, self.store.keys
        updated = {k.decode(): float(v) for k, v in (await client.hgetall(keys.bandit_updated)).items()}
        now = time.time()
        due = [x for x in bandits if now - updated.get(x.key, 0.0) >= x.bandit.update_every_hours * 3600]
        if not due or not await client.set(keys.bandit_lock, "1", nx=True, ex=int(BANDIT_CHECK_S)):
            return False
        changed = []
        for exp in defs.experiments:
            if exp in due:
                by_day = await self.store.counters(exp.key)
                totals = [VariantCounters() for _ in exp.variants]
                for day in by_day.values():
                    totals = [t.add(day.get(v.key, VariantCounters())) for t, v in zip(totals, exp.variants,
                                                                                        strict=True)]
                changed.append(bandit.updated_experiment(exp, totals))
                await client.hset(keys.bandit_updated, exp.key, now)
            else:
                changed.append(exp)
        import msgspec

        await self.publish(msgspec.structs.replace(defs, experiments=changed))
        log.info("bandit weights updated: %s", ", ".join(x.key for x in due))
        return True

    async def run_bandits(self) -> None:
        while True:
            await asyncio.sleep(BANDIT_CHECK_S)
            with contextlib.suppress(RedisError, OSError, StoreUnavailable):
                await self.update_bandits()
