"""Small helpers the routes share: JSON responses, request ids, query parameter parsing."""

from __future__ import annotations

import msgspec
from aiohttp import web

from server.appkeys import MODELS, REQUEST_ID
from server.errors import BadRequest, Unavailable
from server.model_holder import ServingModel

MAX_ID_LEN = 128
_encode = msgspec.json.Encoder().encode


def json_response(body: msgspec.Struct | dict, status: int = 200, headers=None) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json",
                        headers=headers)


def request_id(request: web.Request) -> str:
    return request[REQUEST_ID]


def current_model(request: web.Request) -> ServingModel:
    model = request.app[MODELS].model
    if model is None:
        raise Unavailable("no model loaded yet (publish one with `vitrine train`)",
                          headers={"Retry-After": "5"})
    return model


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"`{name}` must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"`{name}` must be between {lo} and {hi}, got {value}")
    return value


def id_param(request: web.Request, name: str) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_ID_LEN:
        raise BadRequest(f"`{name}` is longer than {MAX_ID_LEN} characters")
    return raw


def id_list(request: web.Request, name: str, limit: int = 100) -> list[str]:
    """Repeated (`?x=a&x=b`) or comma-separated (`?x=a,b`) ids."""
    out = [part for raw in request.query.getall(name, []) for part in raw.split(",") if part]
    if len(out) > limit:
        raise BadRequest(f"at most {limit} values for `{name}`")
    if any(len(x) > MAX_ID_LEN for x in out):
        raise BadRequest(f"a `{name}` value is longer than {MAX_ID_LEN} characters")
    return out
