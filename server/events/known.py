"""Which items and categories an event may add to a shopper's live state and to the trending
lists: the ones the server can recommend from. Anything else (a misspelt category, a new item,
a bot's invented names) is still accepted into the stream, so the next training learns it, but
stays out of the per-shopper keys, whose size and read cost it would otherwise grow.

`known_ids(app)` is the one place that decides: the served model's items as the live catalog
says they are now (server/catalog/view.py), so an item added between trainings is known, with
its category, the moment the catalog has it.
"""

from __future__ import annotations

from aiohttp import web

from server.appkeys import CATALOG, MODELS
from server.catalog.view import ItemsView
from server.store.sessions import Known


class _NothingKnown:
    """No model loaded yet: events go to the stream only."""

    def is_known_item(self, item_id: str) -> bool:
        return False

    def is_known_category(self, category: str) -> bool:
        return False


NOTHING_KNOWN = _NothingKnown()


class _ViewKnows:
    """What the current catalog view of the served model has rows for."""

    __slots__ = ("view",)

    def __init__(self, view: ItemsView):
        self.view = view

    def is_known_item(self, item_id: str) -> bool:
        return self.view.index_of(item_id) is not None

    def is_known_category(self, category: str) -> bool:
        return category in self.view.category_code


def _view(app: web.Application) -> ItemsView | None:
    served = app[MODELS].current
    return app[CATALOG].view(served.model) if served is not None else None


def known_ids(app: web.Application) -> Known:
    view = _view(app)
    return _ViewKnows(view) if view is not None else NOTHING_KNOWN


def _no_price(item_id: str) -> float | None:
    return None


def prices(app: web.Application):
    """A known item's unit price (None: unknown), for events without a `price`: purchase amounts
    (live RFM) and the price of a viewed item (trigger rules): the live catalog's, else the
    served model's."""
    view = _view(app)
    if view is None:
        return _no_price

    def price_of(item_id: str) -> float | None:
        i = view.index_of(item_id)
        return view.price_of(i) if i is not None else None

    return price_of
