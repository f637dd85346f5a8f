"""Write an `EventLog` as an event file in the models/events.py schema, and its catalog.

Used to materialise the synthetic store (demo, benchmarks, tests) in the same formats the
server exports and the trainer reads: CSV, JSON Lines or Parquet, chosen by the extension.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from models.events import EVENT_TYPES
from training.eventlog import EventLog

CHANNELS = ("web", "app", "store")


def _decode(codes: np.ndarray, names: list) -> pa.Array:
    """Codes (-1 = null) → strings, through a dictionary array (no per-row Python)."""
    indices = pa.array(codes, mask=codes < 0, type=pa.int32())
    return pa.DictionaryArray.from_arrays(indices, pa.array(names, pa.string())).dictionary_decode()


def events_table(
    log: EventLog,
    *,
    session: np.ndarray | None = None,
    channel: np.ndarray | None = None,
) -> pa.Table:
    n = len(log)
    seq = pa.array(np.arange(n, dtype=np.int64))
    item_cat = np.array(
        [-1 if c is None else i for i, c in enumerate(log.item_category)], dtype=np.int32)
    cat_code = np.where(log.item >= 0, item_cat[np.maximum(log.item, 0)], -1)
    sess = session if session is not None else log.user.astype(np.int64)
    return pa.table({
        "event_id": pc.binary_join_element_wise("e", pc.cast(seq, pa.string()), ""),
        "session_id": pc.binary_join_element_wise("s", pc.cast(pa.array(sess), pa.string()), ""),
        "type": _decode(log.type.astype(np.int32), list(EVENT_TYPES)),
        "ts": pa.array(log.ts, pa.int64()),
        "user_id": _decode(log.user, log.user_ids),
        "item_id": _decode(log.item, log.item_ids),
        "category": _decode(cat_code, [c or "" for c in log.item_category]),
        "price": pa.array(log.price, pa.float32(), from_pandas=True),
        "quantity": pa.array(log.quantity, pa.int32()),
        "channel": _decode(
            (channel if channel is not None else np.zeros(n, np.int8)).astype(np.int32), list(CHANNELS)),
    })


def write_events(log: EventLog, path: Path, **columns: np.ndarray) -> Path:
    """Write to `path`; the format follows the extension (.csv, .jsonl, .parquet)."""
    path = Path(path)
    table = events_table(log, **columns)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        pq.write_table(table, path)
    elif suffix == ".csv":
        pcsv.write_csv(table, path)
    elif suffix in (".jsonl", ".ndjson"):
        _write_jsonl(table, path)
    else:
        raise ValueError(f"{path}: unknown format {suffix!r} (use .csv, .jsonl or .parquet)")
    return path


def _write_jsonl(table: pa.Table, path: Path, batch: int = 200_000) -> None:
    import orjson

    with path.open("wb") as out:
        for chunk in table.to_batches(max_chunksize=batch):
            for row in chunk.to_pylist():
                out.write(orjson.dumps({k: v for k, v in row.items() if v is not None}))
                out.write(b"\n")


def write_catalog(log: EventLog, path: Path) -> Path:
    consumable = log.item_consumable if log.item_consumable is not None else np.zeros(log.n_items, bool)
    table = pa.table({
        "item_id": log.item_ids,
        "category": log.item_category,
        "price": pa.array(log.item_price, pa.float32(), from_pandas=True),
        "in_stock": log.item_in_stock,
        "consumable": consumable,
    })
    pcsv.write_csv(table, Path(path))
    return Path(path)


def write_archive(log: EventLog, root: Path | str, *, session: np.ndarray | None = None,
                  anonymous: np.ndarray | None = None, batch: int = 20_000) -> int:
    """Write the log into an event archive (models/archive.py) as the server's export would, in
    batches with stream ids 1-0, 2-0, ...; `anonymous` (a mask per event) drops the user_id of
    those events. Returns the number of events written."""
    from models import archive
    from models.events import Event

    rows = events_table(log, session=session).to_pylist()
    if anonymous is not None:
        for row in np.asarray(rows, dtype=object)[anonymous]:
            row["user_id"] = None
    events = [Event(**{k: v for k, v in row.items() if v is not None}) for row in rows]
    for start in range(0, len(events), batch):
        chunk = events[start:start + batch]
        archive.write_batch(root, chunk, f"{start + 1}-0", f"{start + len(chunk)}-0")
    return len(events)
