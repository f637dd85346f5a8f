"""The training run: interactions → evaluate → fit → index → publish, each stage timed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from models import artifact
from models.events import EventType
from models.foldin import FoldIn, gram_matrix
from models.ranking import DEFAULT_SESSION_ITEMS
from training.config import TrainConfig
from training.customers import analyse_customers
from training.ease import fit_ease
from training.engines import fit_function
from training.evaluate import evaluation_users, strong_generalization, summarize, temporal
from training.eventlog import TYPE_CODE, EventLog
from training.index import build_index
from training.interactions import confidence_matrix
from training.popularity import item_popularity
from training.recommender import ModelSpec
from training.search import SearchResult, TooLittleData, search_model

_PURCHASE = TYPE_CODE[EventType.PURCHASE.value]


@dataclass
class TrainResult:
    version: str
    path: Path
    manifest: dict
    timings: dict[str, float] = field(default_factory=dict)


class Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def consumable_items(log: EventLog, matrix_shape: tuple[int, int], share: float) -> np.ndarray:
    """Items whose buyers re-buy them: at least `share` of buyers bought twice or more."""
    if log.item_consumable is not None:
        return log.item_consumable
    buys = log.select((log.type == _PURCHASE) & (log.item >= 0))
    counts = sp.csr_matrix((np.ones(len(buys), np.float32), (buys.user, buys.item)), shape=matrix_shape)
    counts.sum_duplicates()
    counts = counts.tocsc()
    buyers = np.diff(counts.indptr)
    repeaters = np.asarray((counts >= 2).sum(axis=0)).ravel()
    return (buyers >= 3) & (repeaters >= share * np.maximum(buyers, 1))


def _complete_eval_fit(matrix: sp.csr_matrix, config: TrainConfig, fit: dict) -> tuple:
    """The evaluation's factors for all users: held-out users folded in with all their items."""
    item_factors = fit["item_factors"]
    solve = FoldIn(item_factors, fit["gram"], regularization=config.regularization, alpha=config.alpha)
    user_factors = np.zeros((matrix.shape[0], item_factors.shape[1]), dtype=np.float32)
    user_factors[fit["train_rows"]] = fit["user_factors"]
    for u in fit["held"]:
        row = slice(matrix.indptr[u], matrix.indptr[u + 1])
        user_factors[u] = solve(matrix.indices[row], matrix.data[row])
    return user_factors, item_factors


def train(
    log: EventLog,
    config: TrainConfig,
    *,
    timings: dict[str, float] | None = None,
    source: dict | None = None,
    chosen: SearchResult | None = None,
) -> TrainResult:
    """Train on `log` and publish a new version into `config.store`. `timings` carries stages
    already run by the caller (e.g. load); `source` describes the input for the manifest;
    `chosen` is a search already run (on this log's users or a superset), used instead of
    `config.search` so that several fits on splits of one log share one choice."""
    timer = Timer()
    timer.seconds.update(timings or {})
    fit_als = fit_function(config.engine)  # the engine seam: implicit by default, or Spark
    with timer.stage("interactions"):
        matrix = confidence_matrix(log, config.event_weights, half_life_days=config.half_life_days)
    spec, serving, search = ModelSpec.from_config(config), {"session_items": DEFAULT_SESSION_ITEMS}, None
    if chosen is not None:
        spec, search = chosen.spec, {**chosen.record, "reused": True}
        serving["session_items"] = chosen.session_items
        config = spec.als_config(config)
    elif config.search != "off" and config.engine != "implicit":
        # The search fits many small models on one machine; an engine chosen for its scale
        # trains the configured parameters instead.
        search = {"mode": config.search, "skipped": f"the {config.engine} engine trains the configured model"}
    elif config.search != "off":
        try:
            with timer.stage("search"):
                found = search_model(matrix, config, exclude_users=evaluation_users(matrix, config), log=log)
        except TooLittleData as exc:
            search = {"mode": config.search, "skipped": str(exc)}
        else:
            spec, search = found.spec, found.record
            serving["session_items"] = found.session_items
            config = spec.als_config(config)  # the manifest's params are the ALS that was fitted
    serving["blend"] = spec.blend.as_dict()
    metrics: dict = {}
    factors = gram = None
    if config.evaluate:
        with timer.stage("evaluate"):
            runs = [strong_generalization(matrix, config, fit_als, seed, spec)
                    for seed in range(config.eval_seeds)]
            metrics["strong_generalization"] = summarize(runs)
            if config.eval_temporal and (temporal_run := temporal(log, config, fit_als)):
                metrics["temporal"] = summarize([temporal_run])
        first = [run.pop("fit") for run in runs][0]
        if first["held"].size <= config.reuse_eval_fit_max_share * matrix.shape[0]:
            factors = _complete_eval_fit(matrix, config, first)
            gram = first["gram"]
    with timer.stage("fit"):
        user_factors, item_factors = factors or fit_als(matrix, config)
        model = spec.describe()
        neighbours = None
        if "itemitem" in model:
            neighbours = fit_ease(matrix, lam=spec.ease_lambda, neighbours=spec.neighbours,
                                  saturation=spec.saturation)
    with timer.stage("index"):
        index, index_info = build_index(
            item_factors, user_factors, exact_max_items=config.exact_index_max_items,
            target_recall=config.index_target_recall, seed=config.random_state)
    with timer.stage("segments"):
        popularity = item_popularity(matrix)
        gram = gram if gram is not None else gram_matrix(item_factors)
        consumable = consumable_items(log, matrix.shape, config.consumable_repeat_share)
    with timer.stage("customers"):
        customers = analyse_customers(log, config, consumable)

    fingerprint = log.fingerprint()
    version = artifact.new_version(fingerprint)
    manifest = {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_fingerprint": fingerprint,
        # The newest event it learnt from: `vitrine retrain` validates a candidate against this
        # model only on events after it (training/gate.py).
        "data_until_ms": int(log.ts.max()) if len(log) else None,
        "source": source or {},
        "params": config.params(),
        "metrics": metrics,
        "counts": {"events": len(log), "users": log.n_users, "items": log.n_items,
                   "interactions": int(matrix.nnz), "consumables": int(consumable.sum())},
        "index": index_info.as_dict(),
        "published_model": "evaluated fit, held-out users folded in" if factors else "refit on all data",
        "customers": customers.report,
        "model": model,
        "serving": serving,
        **({"search": search} if search else {}),
    }

    def write(directory: Path) -> None:
        manifest["timings_s"] = {k: round(v, 3) for k, v in timer.seconds.items()}
        artifact.write_artifact(
            directory, manifest=manifest,
            items=artifact.ItemMeta(ids=log.item_ids, category=log.item_category,
                                    price=log.item_price, in_stock=log.item_in_stock,
                                    consumable=consumable),
            item_factors=item_factors, user_ids=log.user_ids, user_factors=user_factors,
            popularity=popularity, gram=gram, index=index, segments=customers.segments,
            repurchase=customers.repurchase, neighbours=neighbours)

    with timer.stage("publish"):
        path = artifact.publish(Path(config.store), version, write, keep=config.keep_versions)
    manifest["timings_s"] = {k: round(v, 3) for k, v in timer.seconds.items()}
    return TrainResult(version=version, path=path, manifest=manifest, timings=timer.seconds)
