"""The request parameters recommendation-like routes share, declared once, and the served model
a request uses from start to end."""

from __future__ import annotations

from aiohttp import web

from server.appkeys import MODELS
from server.ops.models import Served
from server.recommend.placements import PLACEMENTS  # noqa: F401 - declared once, there (pure)
from server.web.api import Param
from server.web.errors import Unavailable

FIELDS = ("title", "image_url", "price", "brand", "tags", "in_stock", "attributes", "category")

PLACEMENT = Param("placement", "Where the list is shown; `product` and `cart` take the page's `item_id`, "
                  "`category` its `category` (without them, the shopper's own list).", kind="enum",
                  choices=PLACEMENTS, default="home")
USER_ID = Param("user_id", "The signed-in shopper.")
SESSION_ID = Param("session_id", "The live session (anonymous shoppers too).")
ITEM_IDS = Param("item_id", "The page's item(s): the product shown, the cart's items.", kind="ids")
CATEGORY = Param("category", "Category context; results stay in it.")
K = Param("k", "How many items.", kind="int", minimum=1, maximum=lambda s: s.recommend.max_k,
          default=lambda s: s.recommend.default_k)
EXCLUDE = Param("exclude", "Item ids never to return.", kind="ids", max_items=500)
ITEM_FIELDS = Param("fields", "Item metadata to add to each item, from the live catalog (what a widget "
                    "shows, so it needs no second call).", kind="ids", choices=FIELDS)


def current(request: web.Request) -> Served:
    served = request.app[MODELS].current
    if served is None:
        raise Unavailable("no model loaded yet (publish one with `vitrine train`)",
                          headers={"Retry-After": "5"})
    return served
