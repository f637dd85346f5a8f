"""Each worker's compiled copy of the experiments document, refreshed when its version changes
(polled in the background), so every worker decides from the same definitions within a second
and no request reads them from Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import msgspec
from redis.exceptions import RedisError

from server.experiments.decide import Compiled, compile_definitions
from server.experiments.definitions import DefinitionError, Definitions, Experiment, parse_definitions
from server.experiments.store import ExperimentStore
from server.experiments.strategy import strategy_errors

log = logging.getLogger("vitrine.experiments")
POLL_S = 0.5


class ExperimentSnapshot:
    def __init__(self, store: ExperimentStore, placements: tuple[str, ...]):
        self.store, self.placements = store, placements
        self.definitions = Definitions()
        self.compiled: Compiled = compile_definitions(self.definitions)
        self.last_error: str | None = None

    @property
    def version(self) -> int:
        return self.definitions.version

    def running(self, now_ms: int) -> list[Experiment]:
        """Experiments whose goal events are attributed now (paused ones still convert their
        exposed units; drafts and stopped ones don't)."""
        return [x for x in self.definitions.experiments if x.status in ("running", "paused")
                and (x.end is None or now_ms < x.end + x.attribution_window_ms)]

    def parse(self, data: bytes | dict) -> Definitions:
        """Validate a document as this server would run it; DefinitionError lists the problems
        (including a placement variant whose strategy the ladder can't apply)."""
        defs = parse_definitions(data, known_placements=self.placements)
        errors = [{"field": f"experiments[{i}].variants[{j}].content", "error": message}
                  for i, x in enumerate(defs.experiments) if x.placement is not None
                  for j, v in enumerate(x.variants) for message in strategy_errors(v.content)]
        if errors:
            raise DefinitionError(errors)
        return defs

    async def refresh(self) -> bool:
        """Load the stored document if its version moved; True when it changed."""
        version = await self.store.version()
        if version == self.definitions.version:
            return False
        defs = await self.store.load()
        if defs is None:
            return False
        self.definitions, self.compiled = defs, compile_definitions(defs)
        log.info("experiments version %d: %d experiments, %d rules", defs.version, len(defs.experiments),
                 len(defs.rules))
        return True

    async def publish(self, defs: Definitions) -> Definitions:
        stored = await self.store.save(defs)
        self.definitions, self.compiled = stored, compile_definitions(stored)
        return stored

    async def load_file(self, path: Path) -> None:
        """The document of `experiments.file`, stored at start when it differs from the stored
        one (a bad file is reported and the stored document keeps running)."""
        try:
            defs = self.parse(path.read_bytes())
        except (OSError, DefinitionError) as exc:
            self.last_error = f"{path}: {exc}"
            log.error("experiments file not loaded, keeping the stored document: %s", self.last_error)
            return
        await self.refresh()
        current = msgspec.structs.replace(self.definitions, version=0)
        if msgspec.structs.replace(defs, version=0) != current:
            await self.publish(defs)

    async def run(self) -> None:
        while True:
            with contextlib.suppress(RedisError, OSError, msgspec.DecodeError, msgspec.ValidationError):
                await self.refresh()
            await asyncio.sleep(POLL_S)
