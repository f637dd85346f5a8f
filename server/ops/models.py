"""The served model: the holder loads the version `CURRENT` names, swaps it in without a
restart, and keeps serving the old one when a new one is missing or fails any check.

A request takes one `Served` (model and caches together) at its start and uses only that, so
a swap never changes the model under an in-flight request; the old one is freed when the last
such request finishes.

Versions are known by their directory name (what CURRENT holds; the artifact checks refuse a
manifest naming another). A refused version is not loaded again every interval: only when
CURRENT changes, its files change, or an admin asks (`POST /v1/admin/reload`); its error is
logged once and stays in `last_error` until CURRENT names a version that is served.

With several workers the supervisor loads the served version once before it forks them
(`preload`): each worker takes that model over (`take_preloaded`) and shares its pages with
the others copy-on-write instead of building its own copy of the id lookups and metadata
(hundreds of MB at 1M items; benchmarks/results/worker_memory.md). A version published later
is loaded by the supervisor too, which then replaces the workers (server/ops/workers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models import artifact
from models.retrain import RETRAIN_FILE, RetrainOutcome, read_outcome
from server.ops.health import LogOnce
from server.recommend.caches import Caches
from server.recommend.model import ServingModel

log = logging.getLogger("vitrine.model")
# A worker forked with the supervisor's model leaves a new version to the supervisor this long
# (it loads the version once and replaces the workers in seconds) before loading it itself.
SUPERVISOR_GRACE_S = 60.0
_preloaded: tuple[Path, str, tuple, ServingModel] | None = None  # (store, version, signature, model)


@dataclass(frozen=True, eq=False)
class Served:
    model: ServingModel
    caches: Caches


class ModelHolder:
    """Holds the current Served model; `watch()` polls the store's CURRENT pointer."""

    def __init__(self, store: Path, *, on_refused: Callable[[], None] | None = None,
                 on_swap: Callable[[Served, int], None] | None = None):
        """`on_swap(served, reloads)` is called after each new version is swapped in."""
        self.store = Path(store)
        self.current: Served | None = None
        self.last_error: str | None = None
        self.reloads = 0
        self.on_refused = on_refused
        self.on_swap = on_swap
        self._refused: tuple[str, tuple] | None = None  # (version, its files' signature)
        self._log = LogOnce(log, every_s=3_600.0)
        self._retrain: tuple[float, RetrainOutcome | None] = (-1.0, None)  # (RETRAIN.json's mtime, it)
        # Run in the loader's thread with a model about to be served (the live catalog builds its
        # view of the items, the rules match them), so its first requests don't.
        self.on_load: list[Callable[[ServingModel], object]] = []
        self.from_supervisor = False  # serving a model the supervisor loaded (take_preloaded)
        self._new_seen: tuple[str, float] | None = None  # a new version, first seen when (monotonic)

    def retrain_outcome(self) -> RetrainOutcome | None:
        """The last `vitrine retrain`'s outcome in this store (re-read when the file changes)."""
        try:
            mtime = (self.store / RETRAIN_FILE).stat().st_mtime
        except OSError:
            return None
        if mtime != self._retrain[0]:
            try:
                self._retrain = (mtime, read_outcome(self.store))
            except (OSError, ValueError) as exc:  # a file being replaced, or damaged: say so once
                self._log(logging.WARNING, f"cannot read {self.store / RETRAIN_FILE}: {exc}")
                return self._retrain[1]
        return self._retrain[1]

    @property
    def model(self) -> ServingModel | None:
        return self.current.model if self.current is not None else None

    def load_current(self, *, force: bool = False) -> Served | None:
        """Load the version CURRENT names if it isn't the one served. Keeps serving the old
        model (and records the error) if the new one is missing or fails a check; a version
        refused before is tried again only if its files changed, or with `force`."""
        try:
            version = artifact.current_version(self.store)
        except OSError as exc:
            return self._refuse(None, (), f"cannot read {self.store / artifact.CURRENT}: {exc}")
        if version is None:
            return self._refuse(None, (), f"no published model in {self.store}")
        if self.current is not None and self.current.model.version == version:
            self.last_error = None  # CURRENT is back on the served version
            return self.current
        if self.from_supervisor and self.current is not None and not force:
            if self._new_seen is None or self._new_seen[0] != version:
                self._new_seen = (version, time.monotonic())
            if time.monotonic() - self._new_seen[1] < SUPERVISOR_GRACE_S:
                return self.current  # the supervisor replaces this worker with one forked with it
        signature = _signature(self.store, version)
        if not force and self._refused == (version, signature):
            return self.current
        try:
            model = preloaded = take_preloaded(self.store, version, signature)
            self.from_supervisor = self.from_supervisor or preloaded is not None
            if model is None:
                model = ServingModel.from_artifact(artifact.load(artifact.version_path(self.store, version)))
        except artifact.ArtifactError as exc:
            return self._refuse(version, signature, str(exc))
        except Exception as exc:  # a check the artifact doesn't make yet: refuse, never crash
            log.exception("model %s could not be prepared for serving", version)
            return self._refuse(version, signature, f"{version}: cannot serve it: {exc!r}")
        for prepare in self.on_load:
            try:
                prepare(model)
            except Exception:  # the request path builds what a failed hook didn't
                log.exception("preparing model %s failed; its first requests will", version)
        self.current, self.last_error, self._refused = Served(model, Caches(model)), None, None
        self.reloads += 1
        log.info("serving model %s%s", version, " (loaded once by the supervisor)" if preloaded else "")
        return self.current

    def _refuse(self, version: str | None, signature: tuple, error: str) -> Served | None:
        if self._refused != (version, signature) and version is not None and self.on_refused is not None:
            self.on_refused()
        self._refused, self.last_error = (version, signature), error
        serving = self.current.model.version if self.current else "nothing"
        self._log(logging.ERROR, f"model not loaded, still serving {serving}: {error}")
        return self.current

    async def reload(self, *, force: bool = False) -> Served | None:
        # Loading maps files, checks every value and builds lookups: off the event loop.
        before = self.current
        served = await asyncio.to_thread(self.load_current, force=force)
        if served is not before:
            # The model's lookups are hundreds of thousands of long-lived objects (id strings in
            # dicts and lists) that every full collection would traverse again: a pause of
            # tens of ms in the middle of requests. Frozen, the collector skips them; they are
            # still freed by reference counting when the next swap drops the last reference.
            gc.collect()
            gc.freeze()
            if self.on_swap is not None and served is not None:
                self.on_swap(served, self.reloads)
        return served

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.reload()
            except Exception as exc:  # a flaky volume must not stop the watcher for good: log, retry
                self._log(logging.ERROR, f"checking {self.store} for a new model failed; will retry: {exc!r}")


def _signature(store: Path, version: str) -> tuple:
    """What changes when a version's files are replaced or fixed: names, sizes, mtimes."""
    try:
        directory = artifact.version_path(store, version)
        return tuple(sorted((p.name, st.st_size, st.st_mtime_ns)
                            for p in directory.iterdir() if (st := p.stat())))
    except (OSError, artifact.ArtifactError):
        return ()


def preload(store: Path) -> str | None:
    """Load the version CURRENT names for the workers about to be forked (see the module's
    docstring); its version, or None when there is nothing servable (each worker then reports
    why, as it would alone). Frozen for the collector: a collection in a worker would otherwise
    write to every object's header and copy the pages it meant to share."""
    global _preloaded
    store = Path(store)
    try:
        version = artifact.current_version(store)
        if version is None:
            return None
        signature = _signature(store, version)
        model = ServingModel.from_artifact(artifact.load(artifact.version_path(store, version)))
    except Exception as exc:  # the workers load it themselves and say what is wrong
        log.warning("no model preloaded for the workers: %r", exc)
        return None
    _preloaded = (store, version, signature, model)  # the previous one, if any, is freed here
    gc.collect()
    gc.freeze()
    _trim_heap()  # what the previous one held goes back to the system, not kept for later
    return version


def _trim_heap() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # AttributeError: not glibc
            ctypes.CDLL(None).malloc_trim(0)


def preloaded_version() -> str | None:
    """The version `preload` holds for the next workers, if any."""
    return _preloaded[1] if _preloaded is not None else None


def take_preloaded(store: Path, version: str, signature: tuple) -> ServingModel | None:
    """The model `preload` loaded before this worker was forked, if it is this version with
    the same files; once (a later swap then frees it in this worker)."""
    global _preloaded
    hit, _preloaded = _preloaded, None
    if hit is not None and hit[:3] == (Path(store), version, signature):
        return hit[3]
    return None
