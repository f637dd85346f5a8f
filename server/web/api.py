"""Route declarations: each route states its parameters, body, responses and auth once; the
same declaration parses and validates the request, and produces the route's OpenAPI operation
(server/web/openapi.py) and its row of docs/api.md.

    api = Api("recommendations")

    @api.get("/v1/trending", summary="…", params=(CATEGORY, K), response=Recommendations,
             errors=(400, 404, 503))
    async def get_trending(request, p):   # p: the parsed parameters, by name
        ...

`auth=` says who may call a route: "public" (the default: a storefront key), "admin" or None
(server/web/security.py); the check runs before the handler and the document declares it.

Bounds that are settings (`k`'s maximum) are callables of the Settings, read when the app is
built, so the document always says what the server enforces.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
from aiohttp import web

from server.appkeys import KEY_ID
from server.settings import Settings
from server.web.errors import BadRequest
from server.web.security import AUTH_KINDS, Credentials

MAX_ID_LEN = 128
MAX_JSON_LEN = 4096
_encode = msgspec.json.Encoder().encode
Bound = int | Callable[[Settings], int] | None
Handler = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


def json_response(body: msgspec.Struct | dict, status: int = 200, headers=None) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json",
                        headers=headers)


def _value(bound: Any, settings: Settings) -> Any:
    return bound(settings) if callable(bound) else bound


@dataclass(frozen=True)
class Param:
    """One query or path parameter. `kind`: `id` (an identifier, ≤ 128 characters), `ids`
    (repeated or comma-separated identifiers; each one of `choices` if given), `int`, `enum`
    (one of `choices`), `json` (a JSON object, ≤ 4 KB)."""

    name: str
    description: str
    kind: str = "id"
    where: str = "query"
    required: bool = False
    default: Any = None
    minimum: Bound = None
    maximum: Bound = None
    choices: tuple[str, ...] = ()
    max_items: int = 100
    # A path parameter's regex (aiohttp's `{name:regex}`): keeps a templated path from also
    # matching a literal sibling (`/v1/items/{item_id}` against `/v1/items/similar`).
    pattern: str | None = None

    def bind(self, settings: Settings) -> Callable[[web.Request], Any]:
        """The parser of this parameter for an app's settings (bounds resolved once)."""
        name, required = self.name, self.required or self.where == "path"
        default = _value(self.default, settings)
        if self.kind == "int":
            lo, hi = _value(self.minimum, settings), _value(self.maximum, settings)
            return lambda request: _int(request, name, default, lo, hi, required)
        if self.kind == "ids":
            limit, choices = self.max_items, self.choices
            return lambda request: _ids(request, name, limit, required, choices)
        if self.kind == "enum":
            choices = self.choices
            return lambda request: _enum(request, name, default, choices, required)
        if self.kind == "json":
            return lambda request: _json_object(request, name, required)
        where = self.where
        return lambda request: _id(request, name, default, required, where)

    def schema(self, settings: Settings) -> dict:
        s: dict[str, Any]
        if self.kind == "int":
            s = {"type": "integer"}
            for key, bound in (("minimum", self.minimum), ("maximum", self.maximum)):
                if bound is not None:
                    s[key] = _value(bound, settings)
        elif self.kind == "ids":
            items = ({"type": "string", "enum": list(self.choices)} if self.choices else
                     {"type": "string", "minLength": 1, "maxLength": MAX_ID_LEN, "pattern": "^[^,]+$"})
            s = {"type": "array", "maxItems": self.max_items, "items": items}
        elif self.kind == "enum":
            s = {"type": "string", "enum": list(self.choices)}
        elif self.kind == "json":
            s = {"type": "string", "maxLength": MAX_JSON_LEN, "contentMediaType": "application/json",
                 "description": "a JSON object"}
        else:
            s = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LEN}
            if self.pattern is not None:
                s["pattern"] = f"^(?:{self.pattern})$"
        default = _value(self.default, settings)
        if default is not None:
            s["default"] = default
        return s

    def openapi(self, settings: Settings) -> dict:
        out = {"name": self.name, "in": self.where, "required": self.required or self.where == "path",
               "description": self.description, "schema": self.schema(settings)}
        if self.kind == "json":
            # A JSON object serialised into the parameter: OpenAPI's `content` form, so clients
            # and generators send an object, not any string.
            del out["schema"]
            out["content"] = {"application/json": {"schema": {"type": "object"}}}
        if self.kind == "ids":
            out["style"], out["explode"] = "form", True
        if self.where == "query" and not self.required:
            # `?user_id=` (a template with nothing to fill in) counts as absent, not as an error:
            # a storefront never gets an error page for it.
            out["allowEmptyValue"] = True
        return out


def _raw(request: web.Request, name: str, where: str) -> str | None:
    raw = request.match_info.get(name) if where == "path" else request.query.get(name)
    return None if raw is None or raw == "" else raw


def _about(name: str) -> dict:
    return {"extra": {"parameter": name}}


def _missing(name: str) -> BadRequest:
    return BadRequest(f"`{name}` is required", **_about(name))


def _int(request: web.Request, name: str, default: int | None, lo: int | None, hi: int | None,
         required: bool) -> int | None:
    raw = _raw(request, name, "query")
    if raw is None:
        if required:
            raise _missing(name)
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"`{name}` must be an integer, got {raw[:40]!r}", **_about(name)) from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise BadRequest(f"`{name}` must be between {lo} and {hi}, got {value}", **_about(name))
    return value


def _id(request: web.Request, name: str, default: str | None, required: bool, where: str) -> str | None:
    raw = _raw(request, name, where)
    if raw is None:
        if required:
            raise _missing(name)
        return default
    if len(raw) > MAX_ID_LEN:
        raise BadRequest(f"`{name}` is longer than {MAX_ID_LEN} characters", **_about(name))
    return raw


def _enum(request: web.Request, name: str, default: str | None, choices: tuple[str, ...],
          required: bool) -> str | None:
    raw = _raw(request, name, "query")
    if raw is None:
        if required:
            raise _missing(name)
        return default
    if raw not in choices:
        raise BadRequest(f"unknown {name} {raw[:40]!r} (one of: {', '.join(choices)})", **_about(name))
    return raw


def _json_object(request: web.Request, name: str, required: bool) -> dict | None:
    raw = _raw(request, name, "query")
    if raw is None:
        if required:
            raise _missing(name)
        return None
    if len(raw) > MAX_JSON_LEN:
        raise BadRequest(f"`{name}` is longer than {MAX_JSON_LEN} characters", **_about(name))
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest(f"`{name}` must be a JSON object", **_about(name)) from None
    if not isinstance(value, dict):
        raise BadRequest(f"`{name}` must be a JSON object", **_about(name))
    return value


def _ids(request: web.Request, name: str, limit: int, required: bool,
         choices: tuple[str, ...] = ()) -> list[str]:
    """Repeated (`?x=a&x=b`) or comma-separated (`?x=a,b`) ids."""
    out = [part for raw in request.query.getall(name, ()) for part in raw.split(",") if part]
    if required and not out:
        raise _missing(name)
    if len(out) > limit:
        raise BadRequest(f"at most {limit} values for `{name}`", **_about(name))
    if any(len(x) > MAX_ID_LEN for x in out):
        raise BadRequest(f"a `{name}` value is longer than {MAX_ID_LEN} characters", **_about(name))
    if choices and (bad := next((x for x in out if x not in choices), None)) is not None:
        raise BadRequest(f"unknown {name} {bad[:40]!r} (any of: {', '.join(choices)})", **_about(name))
    return out


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    description: str = ""
    params: tuple[Param, ...] = ()
    body: dict | Callable[[Settings], dict] | None = None  # OpenAPI requestBody (schemas from `schemas`)
    response: type | None = None  # the 200 body's msgspec type (None: `responses` says)
    responses: dict[str, dict] = field(default_factory=dict)  # extra or non-JSON responses
    errors: tuple[int, ...] = ()
    # Who may call it (server/web/security.py): "public" (a storefront key), "admin" (the admin
    # token) or None (anyone: health, metrics, the document).
    auth: str | None = "public"
    admin: bool = False  # the same as auth="admin"
    schemas: tuple[type, ...] = ()  # more types the body refers to
    tag: str = ""

    @property
    def route_path(self) -> str:
        """The path as aiohttp routes it (`path` is the OpenAPI form)."""
        path = self.path
        for p in self.params:
            if p.where == "path" and p.pattern is not None:
                path = path.replace("{" + p.name + "}", "{" + p.name + ":" + p.pattern + "}")
        return path

    def __post_init__(self) -> None:
        if self.admin:
            object.__setattr__(self, "auth", "admin")
        if self.auth not in AUTH_KINDS:
            raise ValueError(f"{self.method} {self.path}: auth must be one of {AUTH_KINDS}")


class Api:
    """The routes of one feature, declared once (see the module docstring)."""

    def __init__(self, tag: str):
        self.tag = tag
        self.operations: list[Operation] = []

    def route(self, method: str, path: str, **spec: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(Operation(method, path, handler, tag=self.tag, **spec))
            return handler
        return register

    def get(self, path: str, **spec: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **spec)

    def post(self, path: str, **spec: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **spec)

    def mount(self, app: web.Application, settings: Settings) -> None:
        credentials = Credentials(settings.security)
        for op in self.operations:
            app.router.add_route(op.method, op.route_path, _bind(op, settings, credentials))


def _bind(op: Operation, settings: Settings,
          credentials: Credentials) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    parsers = [(p.name, p.bind(settings)) for p in op.params]
    handler, check = op.handler, credentials.checker(op.auth)
    if check is not None:
        async def handle(request: web.Request) -> web.StreamResponse:
            request[KEY_ID] = check(request)
            return await handler(request, {name: parse(request) for name, parse in parsers})
    else:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await handler(request, {name: parse(request) for name, parse in parsers})

    handle.__name__ = handler.__name__
    return handle
