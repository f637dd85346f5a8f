"""PUT /v1/items, DELETE /v1/items/{item_id}, GET /v1/items/{item_id} (admin), and the live
catalog's place in the app (its mirror, refreshed in the background)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec
import orjson
from aiohttp import web

from models.catalog import ItemUpdate
from server.appkeys import CATALOG, REDIS, REQUEST_ID, SETTINGS
from server.catalog.live import LiveCatalog
from server.catalog.store import CatalogStore, Doorbell
from server.catalog.view import ItemsView
from server.recommend.routes import current
from server.schemas import CatalogItem, ItemHidden, ItemsAccepted, RejectedItem
from server.store.records import StoreUnavailable
from server.web.api import Api, Param, json_response
from server.web.errors import BadRequest, InvalidItems, NotFound, PayloadTooLarge, Unavailable

api = Api("catalog")
REF = "#/components/schemas/{}"
# `similar` is not an item id: /v1/items/similar is the several-items endpoint.
ITEM = Param("item_id", "The item (any id but `similar`).", where="path", pattern=r"(?!similar$)[^/]+")


async def catalog_ctx(app: web.Application) -> AsyncIterator[None]:
    """The worker's live catalog: loaded before the model (whose view it builds), followed in
    the background every `catalog.refresh_s`."""
    settings, conn = app[SETTINGS], app[REDIS]
    store = CatalogStore(conn.wire, settings.redis)
    doorbell = Doorbell(conn.url, store.keys, cluster=conn.cluster, timeout_s=settings.redis.timeout_s)
    catalog = app[CATALOG] = LiveCatalog(store, settings.catalog.refresh_s, doorbell)
    with contextlib.suppress(StoreUnavailable):  # the loop below retries and says so
        await catalog.load()
    task = asyncio.create_task(catalog.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await doorbell.aclose()


def _items_of(payload: object) -> list:
    if isinstance(payload, dict) and "items" in payload and "item_id" not in payload:
        items = payload["items"]
        if not isinstance(items, list):
            raise BadRequest("`items` must be a list of items")
        return items
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list):
        return payload
    raise BadRequest("the body must be an item, a list of items or {\"items\": [...]}")


@api.route("PUT", "/v1/items", summary="Add or update catalog items (one, a list, or {\"items\": [...]})",
           description="Each item names the fields it changes: an absent field keeps its value, `null` "
                       "clears it (back to the model's). `stock` sets availability. Items are validated "
                       "one by one: valid ones are stored, invalid ones listed in `rejected`. Every "
                       "worker applies the change within `catalog.refresh_s` plus two Redis round trips.",
           body={"required": True, "content": {"application/json": {"schema": {"oneOf": [
               {"$ref": REF.format("ItemUpdate")},
               {"type": "array", "items": {"$ref": REF.format("ItemUpdate")}, "minItems": 1},
               {"type": "object", "required": ["items"], "properties": {
                   "items": {"type": "array", "items": {"$ref": REF.format("ItemUpdate")}}}}]}}}},
           response=ItemsAccepted, schemas=(ItemUpdate,), errors=(400, 413, 422, 503), admin=True)
async def put_items(request: web.Request, p: dict) -> web.Response:
    try:
        payload = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    raw = _items_of(payload)
    if not raw:
        raise BadRequest("no items in the body")
    limit = request.app[SETTINGS].catalog.max_batch_items
    if len(raw) > limit:
        raise PayloadTooLarge(f"at most {limit} items per request, got {len(raw)}")
    updates, rejected = [], []
    for i, obj in enumerate(raw):
        try:
            item = msgspec.convert(obj, ItemUpdate)
        except msgspec.ValidationError as exc:
            item_id = obj.get("item_id") if isinstance(obj, dict) else None
            rejected.append(RejectedItem(index=i, error=str(exc),
                                         item_id=item_id[:128] if isinstance(item_id, str) else None))
            continue
        updates.append((item.item_id, *item.changes()))
    if not updates:
        raise InvalidItems("no valid item in the request",
                           extra={"rejected": [msgspec.to_builtins(r) for r in rejected]})
    catalog = request.app[CATALOG]
    try:
        await catalog.store.update(updates)
    except StoreUnavailable as exc:
        raise _unavailable(exc) from None
    catalog.wake()
    return json_response(ItemsAccepted(accepted=len(updates), rejected=rejected,
                                       request_id=request[REQUEST_ID]))


@api.route("DELETE", "/v1/items/{item_id}",
           summary="Hide an item from every answer (a later PUT shows it again)", params=(ITEM,),
           response=ItemHidden, errors=(404, 503), admin=True)
async def delete_item(request: web.Request, p: dict) -> web.Response:
    item_id, catalog = p["item_id"], request.app[CATALOG]
    try:
        if not catalog.knows(item_id) and (await catalog.store.get([item_id]))[item_id] is None:
            raise NotFound(f"unknown item {item_id!r}", extra={"parameter": "item_id"})
        await catalog.store.hide(item_id)
    except StoreUnavailable as exc:
        raise _unavailable(exc) from None
    catalog.wake()
    return json_response(ItemHidden(item_id=item_id, hidden=True, request_id=request[REQUEST_ID]))


@api.get("/v1/items/{item_id}", summary="An item as answers see it now: the model's metadata with the live "
                                        "catalog over it", params=(ITEM,), response=CatalogItem,
         errors=(404, 503), admin=True)
async def get_item(request: web.Request, p: dict) -> web.Response:
    view = request.app[CATALOG].view(current(request).model)
    i = view.index_of(p["item_id"])
    if i is None:
        raise NotFound(f"unknown item {p['item_id']!r}", extra={"parameter": "item_id"})
    return json_response(describe(view, i, request[REQUEST_ID]))


def describe(view: ItemsView, i: int, request_id: str = "") -> CatalogItem:
    record = view.record(i)
    return CatalogItem(
        item_id=view.id_of(i), in_model=i < view.n_model, category=view.category_of(i),
        price=view.price_of(i), in_stock=bool(view.in_stock[i]), hidden=bool(view.hidden[i]),
        consumable=bool(view.consumable[i]), stock=record.stock if record else None,
        brand=record.brand if record else None, tags=list(view.tags_of(i)),
        title=record.title if record else None, image_url=record.image_url if record else None,
        attributes=dict(record.attributes or {}) if record else {},
        live=[f for f in record.__struct_fields__ if getattr(record, f) is not None and f != "hidden"]
        if record else [],
        request_id=request_id)


def _unavailable(exc: StoreUnavailable) -> Unavailable:
    return Unavailable(f"catalog store unavailable, retry later: {exc}", headers={"Retry-After": "1"})
