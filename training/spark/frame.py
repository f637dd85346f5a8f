"""Events → confidence pairs, in Spark: the same rules as training/readers.py and
training/interactions.py, as DataFrame expressions, so no raw event reaches the driver.

Rows that fail validation are dropped and counted (Spark has no line numbers to stop at);
`event_id` duplicates are dropped; a missing user is stood in for by the session (`s:<id>`).
"""

from __future__ import annotations

from pathlib import Path

from models.events import EVENT_TYPES, ITEM_EVENT_TYPES, EventType
from training.mapping import NATIVE, ColumnMapping

_ITEM_TYPES = [t.value for t in ITEM_EVENT_TYPES]


def read_files(spark, paths: list[str]):
    """Event files of one format (.parquet, .csv, .jsonl) as one DataFrame."""
    suffixes = {Path(p).suffix.lower() for p in paths}
    if len(suffixes) != 1:
        raise ValueError(f"the Spark engine reads files of one format at a time (got {sorted(suffixes)})")
    suffix = suffixes.pop()
    if suffix == ".parquet":
        return spark.read.parquet(*paths)
    if suffix == ".csv":
        return spark.read.option("header", True).csv(paths)  # all text: typed below
    if suffix in (".jsonl", ".ndjson", ".json"):
        return spark.read.json(paths)
    raise ValueError(f"unknown format {suffix!r} (use .csv, .jsonl or .parquet)")


def read_archive(spark, root: str, since_ms: int | None, until_ms: int | None):
    """The archive's committed parts in the window (the part list comes from models.archive)."""
    from models import archive

    # The part list comes from pyarrow's filesystems ("s3://"); Spark's Hadoop ones name S3
    # "s3a://". Listed paths carry no scheme: it is put back for Spark.
    scheme = root.split("://", 1)[0] if "://" in root else None
    listing_root = root.replace("s3a://", "s3://", 1) if scheme == "s3a" else root
    parts = archive.list_parts(listing_root, since_ms, until_ms)
    if not parts:
        raise ValueError(f"{root}: no archived events in the window")
    if scheme:
        parts = [f"{'s3a' if scheme in ('s3', 's3a') else scheme}://{p}" for p in parts]
    df = spark.read.schema(_archive_ddl()).parquet(*parts)
    return df.where(_between("ts", since_ms, until_ms))


def _archive_ddl() -> str:
    from models.archive import archive_schema

    kinds = {"string": "string", "int64": "bigint", "int32": "int", "double": "double"}
    return ", ".join(f"{f.name} {kinds[str(f.type)]}" for f in archive_schema())


def _between(col: str, lo: int | None, hi: int | None):
    from pyspark.sql import functions as F

    cond = F.lit(True)
    if lo is not None:
        cond = cond & (F.col(col) >= lo)
    if hi is not None:
        cond = cond & (F.col(col) < hi)
    return cond


def normalise(df, mapping: ColumnMapping = NATIVE):
    """Mapped, typed, validated events: user, item, type, ts, quantity, price, category,
    event_id, session_id; plus a `bad` reason column (null for good rows) before filtering."""
    from pyspark.sql import functions as F

    for src, dst in mapping.rename.items():
        if src in df.columns:
            df = df.withColumnRenamed(src, dst)
    cols = set(df.columns)

    def text(name: str):
        return F.col(name).cast("string") if name in cols else F.lit(None).cast("string")

    def blank(c):
        return c.isNull() | (F.trim(c) == "")

    typ = F.lit(mapping.event_type) if mapping.event_type else text("type")
    raw_ts = F.col("ts").cast("double") if "ts" in cols else F.lit(None).cast("double")
    ts = (raw_ts * (1000 if mapping.timestamp_unit == "s" else 1)).cast("long")
    if mapping.timestamp_unit == "iso":
        ts = (F.unix_timestamp(text("ts"), "yyyy-MM-dd'T'HH:mm:ss") * 1000).cast("long")
    user = F.when(~blank(text("user_id")), text("user_id")).otherwise(
        F.when(~blank(text("session_id")), F.concat(F.lit("s:"), text("session_id"))))
    item = F.when(~blank(text("item_id")), text("item_id"))
    quantity = F.coalesce(F.col("quantity").cast("int"), F.lit(1)) if "quantity" in cols else F.lit(1)
    price = F.col("price").cast("double") if "price" in cols else F.lit(None).cast("double")
    out = df.select(
        user.alias("user"), item.alias("item"), typ.alias("type"), ts.alias("ts"),
        quantity.alias("quantity"), price.alias("price"), text("category").alias("category"),
        text("event_id").alias("event_id"), text("session_id").alias("session_id"),
        (F.col(mapping.value_column).cast("double") if mapping.value_column else F.lit(None)).alias("value"),
    )
    bad = (F.when(~F.col("type").isin(list(EVENT_TYPES)) | F.col("type").isNull(), "type: unknown event type")
           .when(F.col("ts").isNull() | (F.col("ts") <= 0), "ts: unparsable timestamp")
           .when(F.col("user").isNull(), "user_id: missing user_id")
           .when(F.col("item").isNull() & F.col("type").isin(_ITEM_TYPES), "item_id: missing item_id")
           .when(F.col("quantity") < 1, "quantity: invalid quantity")
           .when(F.col("price") < 0, "price: invalid price"))
    if mapping.value_column:
        bad = bad.when(F.col("value").isNull(), f"{mapping.value_column}: invalid value")
    return out.withColumn("bad", bad)


def clean(events, mapping: ColumnMapping = NATIVE):
    """(good events, counts by reason). One pass counts; the events stay in Spark."""
    from pyspark.sql import functions as F

    counts = {r["bad"] or "kept": r["count"] for r in events.groupBy("bad").count().collect()}
    good = events.where(F.col("bad").isNull())
    below = 0
    if mapping.value_column:
        below = good.where(F.col("value") < mapping.threshold).count()
        good = good.where(F.col("value") >= mapping.threshold)
    with_id = good.where(F.col("event_id").isNotNull()).dropDuplicates(["event_id"])
    good = with_id.unionByName(good.where(F.col("event_id").isNull()))
    counts["below_threshold"] = below
    return good.drop("bad", "value"), counts


def confidence_pairs(events, weights: dict[str, float], half_life_days: float | None):
    """(user, item, c): per pair the sum of event weights (decayed by age from the newest event
    when asked); a pair whose returns reach its purchases is dropped, as in interactions.py."""
    from pyspark.sql import functions as F

    w = F.lit(0.0)
    for name, value in weights.items():
        w = F.when(F.col("type") == name, F.lit(float(value))).otherwise(w)
    items = events.where(F.col("item").isNotNull())
    if half_life_days:
        newest = items.agg(F.max("ts")).first()[0]
        age_days = F.greatest(F.lit(newest) - F.col("ts"), F.lit(0)) / 86_400_000.0
        w = w * F.pow(F.lit(2.0), -age_days / half_life_days)
    qty = F.col("quantity").cast("double")
    pairs = items.groupBy("user", "item").agg(
        F.sum(w).alias("c"),
        F.sum(F.when(F.col("type") == EventType.PURCHASE.value, qty).otherwise(0.0)).alias("bought"),
        F.sum(F.when(F.col("type") == EventType.RETURN.value, qty).otherwise(0.0)).alias("returned"))
    returned = (F.col("returned") > 0) & (F.col("bought") - F.col("returned") <= 0)
    return pairs.where(~returned & (F.col("c") != 0)).select("user", "item", F.col("c").cast("float"))
