"""Which items and categories an event may add to a shopper's live state and to the trending
lists: the ones the server can recommend from. Anything else (a misspelt category, a new item,
a bot's invented names) is still accepted into the stream, so the next training learns it, but
stays out of the per-shopper keys, whose size and read cost it would otherwise grow.

`known_ids(app)` is the one place that decides: today the served model's catalog; a live
catalog (new items between trainings) extends it here.
"""

from __future__ import annotations

from aiohttp import web

from server.appkeys import MODELS
from server.store.sessions import Known


class _NothingKnown:
    """No model loaded yet: events go to the stream only."""

    def is_known_item(self, item_id: str) -> bool:
        return False

    def is_known_category(self, category: str) -> bool:
        return False


NOTHING_KNOWN = _NothingKnown()


def known_ids(app: web.Application) -> Known:
    served = app[MODELS].current
    return served.model if served is not None else NOTHING_KNOWN


def _no_price(item_id: str) -> float | None:
    return None


def prices(app: web.Application):
    """A known item's unit price (None: unknown), for events without a `price`: purchase amounts
    (live RFM) and the price of a viewed item (trigger rules). The served model's catalog; a live
    catalog's prices belong here too."""
    served = app[MODELS].current
    if served is None:
        return _no_price
    index, price = served.model.art.item_index, served.model.art.items.price

    def price_of(item_id: str) -> float | None:
        i = index.get(item_id)
        value = float(price[i]) if i is not None else None
        return value if value is not None and value == value else None

    return price_of
