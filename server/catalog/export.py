"""`vitrine catalog export`: the live catalog as a JSON Lines file the trainer reads
(`vitrine train --catalog FILE`), so the next model learns what the storefront said since the
last one (stock, prices, categories, consumables, hidden items). Written to a temporary file and
renamed: a reader never sees half a file."""

from __future__ import annotations

import os
from pathlib import Path

from models.catalog import write_lines
from server.catalog.store import CatalogStore


async def export_catalog(store: CatalogStore, out: Path) -> int:
    """Write every live catalog record to `out`; returns how many."""
    _, records = await store.snapshot()
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    n = write_lines(tmp, sorted(records.items()))
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)
    return n
