"""The served model: the holder loads the version `CURRENT` names, swaps it in without a
restart, and keeps serving the old one when a new one is missing or corrupt.

A request takes one `Served` (model and caches together) at its start and uses only that, so
a swap never changes the model under an in-flight request; the old one is freed when the last
such request finishes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models import artifact
from server.recommend.caches import Caches
from server.recommend.model import ServingModel

log = logging.getLogger("vitrine.model")


@dataclass(frozen=True, eq=False)
class Served:
    model: ServingModel
    caches: Caches


class ModelHolder:
    """Holds the current Served model; `watch()` polls the store's CURRENT pointer."""

    def __init__(self, store: Path):
        self.store = Path(store)
        self.current: Served | None = None
        self.last_error: str | None = None
        self.reloads = 0
        # Run in the loader's thread with a model about to be served (the live catalog builds its
        # view of the items, the rules match them), so its first requests don't.
        self.on_load: list[Callable[[ServingModel], object]] = []

    @property
    def model(self) -> ServingModel | None:
        return self.current.model if self.current is not None else None

    def load_current(self) -> Served | None:
        """Load the version CURRENT names if it isn't the one served. Keeps serving the old
        model (and records the error) if the new one is missing or corrupt."""
        version = artifact.current_version(self.store)
        if version is None:
            self.last_error = f"no published model in {self.store}"
            return self.current
        if self.current is not None and self.current.model.version == version:
            return self.current
        try:
            model = ServingModel.from_artifact(artifact.load(self.store / version))
        except artifact.ArtifactError as exc:
            self.last_error = str(exc)
            log.error("model reload failed, still serving %s: %s",
                      self.current.model.version if self.current else "nothing", exc)
            return self.current
        for prepare in self.on_load:
            try:
                prepare(model)
            except Exception:  # the request path builds what a failed hook didn't
                log.exception("preparing model %s failed; its first requests will", version)
        self.current, self.last_error = Served(model, Caches(model)), None
        self.reloads += 1
        log.info("serving model %s", version)
        return self.current

    async def reload(self) -> Served | None:
        # Loading maps files and builds lookups: off the event loop.
        before = self.current
        served = await asyncio.to_thread(self.load_current)
        if served is not before:
            # The model's lookups are hundreds of thousands of long-lived objects (id strings in
            # dicts and lists) that every full collection would traverse again: a pause of
            # tens of ms in the middle of requests. Frozen, the collector skips them; they are
            # still freed by reference counting when the next swap drops the last reference.
            gc.collect()
            gc.freeze()
        return served

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                served = self.current
                if artifact.current_version(self.store) != (served.model.version if served else None):
                    await self.reload()
            except Exception:  # a flaky volume must not stop the watcher for good: log, retry
                log.exception("checking %s for a new model failed; will retry", self.store)
