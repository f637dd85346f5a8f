"""Column mappings: how a foreign event log's columns become Vitrine events, without code.

A mapping renames source columns to schema fields, may fix the event type (every row is a
purchase) or derive it from a value threshold (a MovieLens rating ≥ 4 is a positive, the rest
is dropped), and says how timestamps are written. Mappings are small JSON files; a few common
public formats are built in as presets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson

from models.events import EVENT_TYPES

TIMESTAMP_UNITS = ("ms", "s", "iso")


@dataclass(frozen=True)
class ColumnMapping:
    rename: dict[str, str] = field(default_factory=dict)  # source column -> schema field
    event_type: str | None = None  # every row has this type (no `type` column needed)
    value_column: str | None = None  # with threshold: rows with value >= threshold are kept
    threshold: float | None = None
    timestamp_unit: str = "ms"

    def __post_init__(self) -> None:
        if self.event_type is not None and self.event_type not in EVENT_TYPES:
            raise ValueError(f"mapping: unknown event_type {self.event_type!r}")
        if self.timestamp_unit not in TIMESTAMP_UNITS:
            raise ValueError(f"mapping: timestamp_unit must be one of {', '.join(TIMESTAMP_UNITS)}")
        if (self.value_column is None) != (self.threshold is None):
            raise ValueError("mapping: value_column and threshold go together")


NATIVE = ColumnMapping()

PRESETS: dict[str, ColumnMapping] = {
    # MovieLens ratings.csv: userId,movieId,rating,timestamp (seconds); rating >= 4 is a positive.
    "movielens": ColumnMapping(
        rename={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"},
        event_type="purchase",
        value_column="rating",
        threshold=4.0,
        timestamp_unit="s",
    ),
}


def load_mapping(spec: str | None) -> ColumnMapping:
    """`None` → the native schema; a preset name; or a JSON file with ColumnMapping's fields."""
    if spec is None:
        return NATIVE
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"mapping {spec!r}: not a preset ({', '.join(PRESETS)}) nor a file")
    try:
        raw = orjson.loads(path.read_bytes())
        return ColumnMapping(**raw)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"mapping {path}: {exc}") from exc
