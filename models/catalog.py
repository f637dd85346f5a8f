"""The live catalog contract: one item as a storefront sends it (`PUT /v1/items`), as the server
keeps it (layered over the item metadata of the published model) and exports it, and as the
trainer reads it back (`vitrine train --catalog catalog.jsonl`).

An update names only the fields it changes: an absent field keeps its value, `null` clears it
(back to the model's value, or unknown for an item the model never saw). `stock` implies
availability (`in_stock = stock > 0`); `in_stock` alone forgets an earlier stock count. A `PUT`
makes a hidden item visible again; `DELETE` hides it (it stays known: events on it are valid).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from models.events import MAX_ID_LEN

# `similar` would be unreachable at /v1/items/{item_id}: that path is the several-items endpoint.
ItemId = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LEN, pattern="^(?!similar$)",
                             description="Any id but `similar`.")]
# A category path, `home/kitchen/knives`: matched by prefix at `/` boundaries in rules.
CategoryPath = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LEN, pattern=r"^[^/]+(/[^/]+)*$")]
Name = Annotated[str, Meta(min_length=1, max_length=128)]
Tag = Annotated[str, Meta(min_length=1, max_length=64)]
AttrValue = Annotated[str, Meta(max_length=1024)] | int | float | bool
Price = Annotated[float, Meta(ge=0, le=1e9)]
Stock = Annotated[int, Meta(ge=0, le=2**31 - 1)]
Url = Annotated[str, Meta(max_length=2048, pattern=r"^https?://\S+$")]

# The fields an update may set, in the order they are documented. `hidden` is set by DELETE.
FIELDS = ("category", "price", "in_stock", "stock", "brand", "tags", "consumable", "title", "image_url",
          "attributes")
STORED_FIELDS = (*FIELDS, "hidden")


class ItemUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One item of `PUT /v1/items`: the id and the fields to change (absent: keep; null: clear)."""

    item_id: ItemId
    category: CategoryPath | None | UnsetType = UNSET
    price: Price | None | UnsetType = UNSET
    in_stock: bool | None | UnsetType = UNSET
    stock: Stock | None | UnsetType = UNSET
    brand: Name | None | UnsetType = UNSET
    tags: Annotated[list[Tag], Meta(max_length=32)] | None | UnsetType = UNSET
    consumable: bool | None | UnsetType = UNSET
    title: Annotated[str, Meta(max_length=512)] | None | UnsetType = UNSET
    image_url: Url | None | UnsetType = UNSET
    attributes: Annotated[dict[Tag, AttrValue], Meta(max_length=32)] | None | UnsetType = UNSET

    def __post_init__(self) -> None:
        if (isinstance(self.stock, int) and isinstance(self.in_stock, bool)
                and self.in_stock != (self.stock > 0)):
            raise ValueError(f"`in_stock` ({str(self.in_stock).lower()}) and `stock` ({self.stock}) disagree")

    def changes(self) -> tuple[dict[str, Any], list[str]]:
        """(fields to set, fields to clear), normalised: `stock` sets `in_stock`, `in_stock`
        alone clears `stock`, tags are deduplicated in order, and the item is made visible."""
        sets: dict[str, Any] = {}
        clears = ["hidden"]
        for name in FIELDS:
            value = getattr(self, name)
            if value is UNSET:
                continue
            if value is None:
                clears.append(name)
            else:
                sets[name] = list(dict.fromkeys(value)) if name == "tags" else value
        if isinstance(self.stock, int):
            sets["in_stock"] = self.stock > 0
        elif isinstance(self.in_stock, bool) and self.stock is UNSET:
            clears.append("stock")
        return sets, clears


class ItemRecord(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """An item as the live catalog holds it: only what was set (None: the model's value)."""

    category: str | None = None
    price: float | None = None
    in_stock: bool | None = None
    stock: int | None = None
    brand: str | None = None
    tags: list[str] | None = None
    consumable: bool | None = None
    title: str | None = None
    image_url: str | None = None
    attributes: dict[str, Any] | None = None
    hidden: bool = False


class CatalogLine(ItemRecord, kw_only=True, omit_defaults=True, gc=False):
    """One line of an exported catalog file (JSON Lines): the record with its id."""

    item_id: str


def merge(record: ItemRecord | None, sets: dict[str, Any], clears: Iterable[str]) -> ItemRecord | None:
    """The record after one update (what the store's script does, field by field); None when
    nothing is left set."""
    fields = msgspec.structs.asdict(record) if record is not None else {}
    fields.update(sets)
    for name in clears:
        fields.pop(name, None)
    fields = {k: v for k, v in fields.items() if v is not None and not (k == "hidden" and v is False)}
    return ItemRecord(**fields) if fields else None


def record_from_fields(fields: dict[str, Any]) -> ItemRecord:
    """A record from stored field values, ignoring fields this version does not know (a newer
    writer's), so that a rolling upgrade never breaks the mirror."""
    return msgspec.convert({k: v for k, v in fields.items() if k in STORED_FIELDS}, ItemRecord)


_line_encoder = msgspec.json.Encoder()
_line_decoder = msgspec.json.Decoder(CatalogLine)


def write_lines(path: Path, rows: Iterable[tuple[str, ItemRecord]]) -> int:
    """Write `(item_id, record)` rows as JSON Lines; returns how many."""
    n = 0
    with Path(path).open("wb") as f:
        for item_id, record in rows:
            line = CatalogLine(item_id=item_id, **msgspec.structs.asdict(record))
            f.write(_line_encoder.encode(line) + b"\n")
            n += 1
    return n


def read_lines(path: Path) -> Iterator[CatalogLine]:
    """The rows of an exported catalog file; raises ValueError naming the line of a bad one."""
    with Path(path).open("rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield _line_decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
