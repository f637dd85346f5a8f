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
