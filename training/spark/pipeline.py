"""`vitrine train --engine spark`: the training run with the events kept in Spark.

Spark reads the event files or the archive's window, validates and deduplicates them, builds
the confidence pairs and fits MLlib's ALS; what comes back to the driver is per-user and
per-item only: the id tables, the factors, popularity, item metadata, consumable flags, the
customers' purchase aggregates, and the held-out users' rows for the evaluation. From there the
run is the implicit pipeline's: the same strong-generalization protocol (training/evaluate.py
`score_held_out`), the same index, the same artifact, published the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from models import artifact
from models.foldin import FoldIn, gram_matrix
from training.catalog import Catalog, apply_catalog
from training.config import TrainConfig
from training.evaluate import score_held_out, summarize
from training.eventlog import EventLog
from training.index import build_index
from training.mapping import NATIVE, ColumnMapping
from training.pipeline import Timer, TrainResult
from training.segments import DAY_MS, rfm_from_aggregates
from training.spark import frame
from training.spark.als import fit_pairs
from training.spark.session import SparkOptions, spark_session


@dataclass
class SparkSource:
    """Event files, or an archive root with an optional window (Unix ms)."""

    paths: list[str] | None = None
    archive: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def describe(self) -> dict:
        if self.archive:
            return {"archive": self.archive, "since_ms": self.since_ms, "until_ms": self.until_ms}
        return {"files": self.paths}


def train_spark(source: SparkSource, config: TrainConfig, *, mapping: ColumnMapping = NATIVE,
                catalog: Catalog | None = None, options: SparkOptions | None = None) -> TrainResult:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    timer = Timer()
    spark = spark_session(options)
    with timer.stage("load"):
        raw = (frame.read_archive(spark, source.archive, source.since_ms, source.until_ms)
               if source.archive else frame.read_files(spark, source.paths or []))
        events, counts = frame.clean(frame.normalise(raw, mapping), mapping)
        if source.archive:
            events = _without_erased(events, source.archive)
        events = events.persist(StorageLevel.MEMORY_AND_DISK)
        n_events = events.count()
        if n_events == 0:
            raise ValueError(f"no usable events ({counts})")
    with timer.stage("interactions"):
        pairs, user_ids, item_ids = _indexed_pairs(events, config)
        pairs = pairs.persist(StorageLevel.MEMORY_AND_DISK)
        n_pairs = pairs.count()
    n_users, n_items = len(user_ids), len(item_ids)
    metrics: dict = {}
    reuse = None
    if config.evaluate:
        with timer.stage("evaluate"):
            runs, first = _evaluate(spark, pairs, n_users, n_items, config)
            metrics["strong_generalization"] = summarize(runs)
            metrics["note"] = "Spark engine: strong generalization only (no temporal protocol)"
        if first["held"].size <= config.reuse_eval_fit_max_share * n_users:
            reuse = first
    with timer.stage("fit"):
        if reuse is not None:
            user_factors, item_factors, gram = _complete(reuse, config)
        else:
            user_factors, item_factors = fit_pairs(pairs, n_users, n_items, config)
            gram = gram_matrix(item_factors)
    with timer.stage("index"):
        index, index_info = build_index(
            item_factors, user_factors, exact_max_items=config.exact_index_max_items,
            target_recall=config.index_target_recall, seed=config.random_state)
    with timer.stage("segments"):
        popularity = _per_item(pairs.groupBy("i").agg(F.count("*").alias("v")), n_items)
        items = _item_meta(events, item_ids, catalog)
        consumable = (items.item_consumable if items.item_consumable is not None
                      else _consumables(events, item_ids, config.consumable_repeat_share))
        segments = _segments(events)
        fingerprint = _fingerprint(events)
        newest = events.agg(F.max("ts")).first()[0]  # the events are cached: one more pass
    events.unpersist()
    pairs.unpersist()

    version = artifact.new_version(fingerprint)
    read = ", ".join(f"{n:,} {reason}" for reason, n in sorted(counts.items()))
    manifest = {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_fingerprint": fingerprint,
        "data_until_ms": int(newest) if newest is not None else None,  # as training/pipeline.py's
        "source": {**source.describe(), "engine": "spark", "spark": spark.version, "read": read},
        "params": {**config.params(), "engine": "spark"},
        "metrics": metrics,
        "counts": {"events": n_events, "users": n_users, "items": n_items, "interactions": n_pairs,
                   "consumables": int(np.sum(consumable))},
        "index": index_info.as_dict(),
        "published_model": "evaluated fit, held-out users folded in" if reuse else "refit on all data",
    }

    def write(directory: Path) -> None:
        manifest["timings_s"] = {k: round(v, 3) for k, v in timer.seconds.items()}
        artifact.write_artifact(
            directory, manifest=manifest,
            items=artifact.ItemMeta(ids=item_ids, category=items.item_category, price=items.item_price,
                                    in_stock=items.item_in_stock, consumable=consumable),
            item_factors=item_factors, user_ids=user_ids, user_factors=user_factors,
            popularity=popularity, gram=gram, index=index, segments=segments)

    with timer.stage("publish"):
        path = artifact.publish(Path(config.store), version, write, keep=config.keep_versions)
    manifest["timings_s"] = {k: round(v, 3) for k, v in timer.seconds.items()}
    return TrainResult(version=version, path=path, manifest=manifest, timings=timer.seconds)


def _without_erased(events, root: str):
    from pyspark.sql import functions as F

    from models.tombstones import read_tombstones

    stones = read_tombstones(root)
    if not stones:
        return events
    users = sorted(stones.user_ids)
    seen = [r[0] for r in events.where(F.col("user").isin(users)).select("session_id").distinct().collect()]
    sessions = sorted(stones.session_ids | {s for s in seen if s is not None})
    erased = F.col("user").isin(users) | F.coalesce(F.col("session_id").isin(sessions), F.lit(False))
    return events.where(~erased)


def _indexed_pairs(events, config: TrainConfig):
    """Confidence pairs with dense int codes; the id tables (sorted ids) come back."""
    from pyspark.ml.feature import StringIndexer
    from pyspark.sql import functions as F

    pairs = frame.confidence_pairs(events, config.event_weights, config.half_life_days)
    # Every shopper and item seen gets a row, as in the in-memory reader (factors stay zero
    # for those without a positive). The labels (the ids) are what comes back.
    users = StringIndexer(inputCol="user", outputCol="u", stringOrderType="alphabetAsc").fit(
        events.select("user"))
    items = StringIndexer(inputCol="item", outputCol="i", stringOrderType="alphabetAsc").fit(
        events.where(F.col("item").isNotNull()).select("item"))
    coded = items.transform(users.transform(pairs))
    coded = coded.select(F.col("u").cast("int"), F.col("i").cast("int"), "c")
    return coded, list(users.labels), list(items.labels)


def _evaluate(spark, pairs, n_users: int, n_items: int, config: TrainConfig):
    """Strong generalization, seed by seed, as training/evaluate.py does it; only the held-out
    users' rows and the factors come to the driver."""
    from pyspark.sql import functions as F

    counts = pairs.groupBy("u").count().where(F.col("count") >= config.eval_min_positives)
    eligible = np.sort(np.array([r[0] for r in counts.select("u").collect()], dtype=np.int64))
    from tqdm import tqdm

    runs, first = [], None
    for seed in tqdm(range(config.eval_seeds), desc="evaluate (one ALS fit per seed)", unit="seed",
                     disable=None):
        rng = np.random.default_rng(seed)
        n_held = min(config.eval_holdout_users, config.eval_max_users, eligible.size // 5)
        if n_held < 1:
            raise ValueError("too few users with enough positives to evaluate")
        held = rng.choice(eligible, size=n_held, replace=False)
        held_df = F.broadcast(spark.createDataFrame([(int(u),) for u in held], "u int"))
        train = pairs.join(held_df, "u", "left_anti")
        user_factors, item_factors = fit_pairs(train, n_users, n_items, config)
        gram = gram_matrix(item_factors)
        popularity = _per_item(train.groupBy("i").agg(F.count("*").alias("v")), n_items)
        rows = _rows(pairs.join(held_df, "u"), held)
        run = score_held_out(rows, item_factors, gram, popularity, config, rng)
        runs.append(run)
        if first is None:
            first = {"user_factors": user_factors, "item_factors": item_factors, "gram": gram,
                     "held": held, "rows": rows}
    return runs, first


def _rows(df, held: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The held-out users' (items, weights), item-sorted as a CSR row is, in `held`'s order."""
    table = df.toArrow()
    u, i, c = (table[name].to_numpy() for name in ("u", "i", "c"))
    order = np.lexsort((i, u))
    u, i, c = u[order], i[order], c[order].astype(np.float32)
    starts = np.searchsorted(u, held)
    ends = np.searchsorted(u, held, side="right")
    return [(i[s:e].astype(np.int32), c[s:e]) for s, e in zip(starts, ends, strict=True)]


def _complete(first: dict, config: TrainConfig):
    """The evaluated fit for every user: the held-out ones folded in with all their items."""
    item_factors, gram = first["item_factors"], first["gram"]
    solve = FoldIn(item_factors, gram, regularization=config.regularization, alpha=config.alpha)
    user_factors = first["user_factors"]
    for u, (items, weights) in zip(first["held"], first["rows"], strict=True):
        user_factors[u] = solve(items, weights)
    return user_factors, item_factors, gram


def _per_item(df, n_items: int) -> np.ndarray:
    out = np.zeros(n_items, np.float32)
    table = df.toArrow()
    if table.num_rows:
        out[table["i"].to_numpy().astype(np.int64)] = table["v"].to_numpy()
    return out


def _item_meta(events, item_ids: list[str], catalog: Catalog | None) -> EventLog:
    """Per item the newest category and price seen (an EventLog with the tables, no events),
    then the catalog over it, as the in-memory reader does."""
    from pyspark.sql import functions as F

    meta = (events.where(F.col("item").isNotNull()).groupBy("item").agg(
        F.max_by("category", F.when(F.col("category").isNotNull(), F.col("ts"))).alias("category"),
        F.max_by("price", F.when(F.col("price").isNotNull(), F.col("ts"))).alias("price"))).toArrow()
    code = {item: n for n, item in enumerate(item_ids)}
    rows = np.array([code[i] for i in meta["item"].to_pylist()], dtype=np.int64)
    category: list[str | None] = [None] * len(item_ids)
    for row, cat in zip(rows.tolist(), meta["category"].to_pylist(), strict=True):
        category[row] = cat
    price = np.full(len(item_ids), np.nan, np.float32)
    price[rows] = np.asarray(meta["price"].to_numpy(zero_copy_only=False), np.float64)
    empty = np.zeros(0, np.int32)
    log = EventLog(user=empty, item=empty, type=empty.astype(np.int8), ts=empty.astype(np.int64),
                   quantity=empty, price=empty.astype(np.float32), user_ids=[], item_ids=item_ids,
                   item_category=category, item_price=price, item_in_stock=np.ones(len(item_ids), bool))
    return apply_catalog(log, catalog) if catalog is not None else log


def _consumables(events, item_ids: list[str], share: float) -> np.ndarray:
    """Items at least `share` of whose buyers bought twice or more (and 3+ buyers)."""
    from pyspark.sql import functions as F

    buys = events.where((F.col("type") == "purchase") & F.col("item").isNotNull())
    per_item = (buys.groupBy("user", "item").count().groupBy("item")
                .agg(F.count("*").alias("buyers"),
                     F.sum((F.col("count") >= 2).cast("int")).alias("repeaters"))
                .where((F.col("buyers") >= 3) & (F.col("repeaters") >= share * F.col("buyers"))))
    code = {item: n for n, item in enumerate(item_ids)}
    out = np.zeros(len(item_ids), bool)
    for r in per_item.select("item").collect():
        out[code[r[0]]] = True
    return out


def _segments(events) -> dict:
    from pyspark.sql import functions as F

    now = events.agg(F.max("ts")).first()[0] or 0
    buys = events.where((F.col("type") == "purchase") & F.col("item").isNotNull())
    spend = F.coalesce(F.col("price"), F.lit(0.0)) * F.col("quantity")
    agg = buys.groupBy("user").agg(
        F.max("ts").alias("last"), F.min("ts").alias("first"),
        F.countDistinct(F.floor(F.col("ts") / DAY_MS)).alias("frequency"),
        F.sum(spend).alias("monetary")).orderBy("user").toArrow()
    if agg.num_rows == 0:
        return {"as_of_ms": int(now), "users": [], "r": [], "f": [], "m": [], "segment": [], "churn_risk": []}
    return rfm_from_aggregates(agg["user"].to_pylist(), last=agg["last"].to_numpy(),
                               first=agg["first"].to_numpy(), frequency=agg["frequency"].to_numpy(),
                               monetary=agg["monetary"].to_numpy(), now=int(now))


def _fingerprint(events) -> str:
    """A content hash of the events, computed in Spark (order-independent)."""
    import hashlib

    from pyspark.sql import functions as F

    row = events.agg(F.count("*"), F.sum(F.xxhash64("user", "item", "type", "ts", "quantity") % (1 << 31)),
                     F.sum(F.xxhash64("item", "ts") % (1 << 31))).first()
    return hashlib.sha256(repr(tuple(row)).encode()).hexdigest()
