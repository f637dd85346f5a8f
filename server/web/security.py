"""API keys and CORS (settings: `security.*`).

A route declares who may call it (`auth=` in server/web/api.py):

| `auth` | needs | when nothing is configured |
| --- | --- | --- |
| `"public"` (the default) | `X-API-Key: <one of security.public_keys>` or the admin token | open |
| `"admin"` | `Authorization: Bearer <security.admin_token>` | open; refused once public keys are set |
| `None` | nothing (health, readiness, metrics, the document) | open |

Keys are compared in constant time (`hmac.compare_digest`, against every key, no early exit).
A request carries the id of the key it used (`request[KEY_ID]`: a short fingerprint, never the
key): the event rate limit and the access log are per key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from aiohttp import web

from server.settings import SecuritySettings
from server.web.errors import Unauthorized

PUBLIC_HEADER = "X-API-Key"
ANONYMOUS = "-"  # the key id of requests to a server without keys
AUTH_KINDS = ("public", "admin", None)


def key_id(key: bytes) -> str:
    return "k" + hashlib.sha256(key).hexdigest()[:8]


def _encoded(value: str) -> bytes:
    # Header bytes that are not UTF-8 arrive as surrogates: encoded back as they came, they
    # simply don't match.
    return value.strip().encode("utf-8", "surrogateescape")


def _match(given: bytes, keys: list[tuple[bytes, str]]) -> str | None:
    found = None
    for key, kid in keys:
        if hmac.compare_digest(given, key) and found is None:
            found = kid
    return found


class Credentials:
    """The keys of one server, and the check each kind of route needs."""

    def __init__(self, cfg: SecuritySettings):
        self.public = [(k.encode(), key_id(k.encode())) for k in cfg.public_keys]
        self.admin = [(cfg.admin_token.encode(), "admin")] if cfg.admin_token else []

    def enforced(self, auth: str | None) -> bool:
        """Does a route declared with `auth` check anything on this server?"""
        if auth == "public":
            return bool(self.public)
        if auth == "admin":
            return bool(self.admin or self.public)
        return False

    def checker(self, auth: str | None) -> Callable[[web.Request], str] | None:
        """A function of the request returning the caller's key id or raising Unauthorized;
        None when the route checks nothing on this server."""
        if auth not in AUTH_KINDS:
            raise ValueError(f"auth must be one of {AUTH_KINDS}, got {auth!r}")
        if not self.enforced(auth):
            return None
        return self._public if auth == "public" else self._admin

    def _bearer(self, request: web.Request) -> str | None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.admin:
            return None
        return _match(_encoded(given), self.admin)

    def _public(self, request: web.Request) -> str:
        given = request.headers.get(PUBLIC_HEADER)
        found = _match(_encoded(given), self.public) if given is not None else None
        found = found or self._bearer(request)
        if found is None:
            raise Unauthorized(f"this endpoint needs `{PUBLIC_HEADER}: <key>` (a storefront key)"
                               if given is None else f"unknown key in `{PUBLIC_HEADER}`",
                               headers={"WWW-Authenticate": 'Bearer realm="vitrine"'})
        return found

    def _admin(self, request: web.Request) -> str:
        found = self._bearer(request)
        if found is None:
            detail = ("this endpoint needs `Authorization: Bearer <admin token>`" if self.admin
                      else "admin endpoints are disabled: no admin token is configured "
                           "(security.admin_token)")
            raise Unauthorized(detail, headers={"WWW-Authenticate": 'Bearer realm="vitrine-admin"'})
        return found


def insecure_warnings(cfg: SecuritySettings) -> list[str]:
    """What is open on a server with these settings (logged at start, shown by /readyz)."""
    out = []
    if not cfg.public_keys:
        out.append("no API keys (security.public_keys): anyone who reaches the server can read "
                   "recommendations and write events for any shopper")
    if not cfg.admin_token and not cfg.public_keys:
        out.append("no admin token (security.admin_token): admin endpoints are open")
    return out


class Cors:
    """Which browser origins may call the API (`security.cors_origins`)."""

    ALLOW_HEADERS = f"Content-Type, {PUBLIC_HEADER}, Authorization, X-Request-ID"
    EXPOSE_HEADERS = "X-Request-ID, Retry-After"
    MAX_AGE_S = "600"

    def __init__(self, origins: list[str]):
        self.any = "*" in origins
        self.origins = frozenset(o.rstrip("/") for o in origins)

    @property
    def enabled(self) -> bool:
        return self.any or bool(self.origins)

    def allows(self, origin: str) -> bool:
        return self.any or origin in self.origins

    def preflight(self, request: web.Request, origin: str) -> web.Response | None:
        """The answer to a browser's preflight for an allowed origin; None when the origin is
        not allowed (the caller refuses it) or the path is unknown."""
        if not self.allows(origin):
            return None
        match = request.match_info.http_exception
        if match is not None and not isinstance(match, web.HTTPMethodNotAllowed):
            return None
        methods = sorted(match.allowed_methods) if match is not None else [request.method]
        return web.Response(status=204, headers={
            "Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": self.ALLOW_HEADERS,
            "Access-Control-Max-Age": self.MAX_AGE_S})

    def decorate(self, response: web.StreamResponse, origin: str) -> None:
        response.headers["Vary"] = "Origin"  # a cache must not serve one origin's answer to another
        if self.allows(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = self.EXPOSE_HEADERS


def require_admin(request: web.Request, cfg: SecuritySettings) -> None:
    """For a handler that needs the admin token for part of what it does (forced variants): the
    same check as an `auth="admin"` route, with this server's `security` settings."""
    check = Credentials(cfg).checker("admin")
    if check is not None:
        check(request)
