"""Item catalog: category, price, stock and the consumable flag, from a file beside the events.

Events carry a category and price when the storefront sends them; a catalog fills the rest and
is the only source of stock and of which items are consumables. Three layouts are read:
Vitrine's own CSV (`item_id,category,price,in_stock[,consumable]`), MovieLens' `movies.csv`
(`movieId,title,genres`: the first genre stands in for the category), and the live catalog as
the server exports it (`vitrine catalog export`, JSON Lines in models/catalog.py's schema: a
field it doesn't set keeps the events' value; a hidden item is out of stock).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from models.catalog import read_lines
from training.eventlog import EventLog


@dataclass
class Catalog:
    item_ids: list[str]
    category: list[str | None]
    price: np.ndarray  # float32, NaN when unknown
    in_stock: np.ndarray  # bool
    consumable: np.ndarray  # bool


def read_catalog(path: Path) -> Catalog:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such catalog file")
    if path.suffix == ".jsonl":
        return _read_live_catalog(path)
    try:
        table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{path}: cannot parse catalog CSV: {exc}") from None
    cols = set(table.column_names)
    n = table.num_rows
    if {"movieId", "genres"} <= cols:
        ids = pc.cast(table["movieId"], pa.string()).to_pylist()
        first_genre = pc.list_element(pc.split_pattern(table["genres"], "|"), 0).to_pylist()
        category = [None if g in (None, "(no genres listed)") else g for g in first_genre]
        return Catalog(ids, category, np.full(n, np.nan, np.float32), np.ones(n, bool), np.zeros(n, bool))
    if "item_id" not in cols:
        raise ValueError(f"{path}: a catalog needs an item_id column (found: {', '.join(sorted(cols))})")

    def flag(name: str, default: bool) -> np.ndarray:
        if name not in cols:
            return np.full(n, default)
        text = pc.utf8_lower(pc.cast(table[name], pa.string()))
        return np.asarray(pc.is_in(text, pa.array(["1", "true", "yes"])).to_numpy(zero_copy_only=False), bool)

    price = (pc.cast(table["price"], pa.float32()).to_numpy(zero_copy_only=False).astype(np.float32)
             if "price" in cols else np.full(n, np.nan, np.float32))
    return Catalog(
        item_ids=pc.cast(table["item_id"], pa.string()).to_pylist(),
        category=pc.cast(table["category"], pa.string()).to_pylist() if "category" in cols else [None] * n,
        price=np.nan_to_num(price, nan=np.nan),
        in_stock=flag("in_stock", True),
        consumable=flag("consumable", False),
    )


def _read_live_catalog(path: Path) -> Catalog:
    rows = list(read_lines(path))
    return Catalog(
        item_ids=[r.item_id for r in rows],
        category=[r.category for r in rows],
        price=np.array([np.nan if r.price is None else r.price for r in rows], np.float32),
        in_stock=np.array([not r.hidden and r.in_stock is not False for r in rows], bool),
        consumable=np.array([bool(r.consumable) for r in rows], bool),
    )


def apply_catalog(log: EventLog, catalog: Catalog) -> EventLog:
    """Fill the log's per-item metadata from the catalog (items absent from it keep theirs)."""
    index = {item: i for i, item in enumerate(catalog.item_ids)}
    rows = np.array([index.get(item, -1) for item in log.item_ids], dtype=np.int64)
    found = rows >= 0
    category = list(log.item_category)
    for i in np.flatnonzero(found).tolist():
        if catalog.category[rows[i]] is not None:
            category[i] = catalog.category[rows[i]]
    price = log.item_price.copy()
    cat_price = catalog.price[rows[found]]
    price[found] = np.where(np.isnan(cat_price), price[found], cat_price)
    in_stock = log.item_in_stock.copy()
    in_stock[found] = catalog.in_stock[rows[found]]
    consumable = np.zeros(log.n_items, bool) if log.item_consumable is None else log.item_consumable.copy()
    consumable[found] = catalog.consumable[rows[found]]
    log.item_category, log.item_price, log.item_in_stock, log.item_consumable = (
        category, price, in_stock, consumable)
    return log
