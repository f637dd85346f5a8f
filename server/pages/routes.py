"""GET /vitrine.js, /dashboard and /demo/: static files. They are clients of the API (the
dashboard reads /metrics, the model and the admin endpoints with the admin token; the demo shop
uses vitrine.js), not a second backend."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from server.appkeys import SETTINGS
from server.web.api import Api, Param
from server.web.errors import NotFound

api = Api("pages")
STATIC = Path(__file__).with_name("static")
# Inline scripts and styles only, everything from this origin: the pages work on closed networks.
_CSP = ("default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:")


def _file(name: str, content_type: str, cache: str) -> web.Response:
    return web.Response(body=(STATIC / name).read_bytes(), content_type=content_type,
                        headers={"Cache-Control": cache, "Content-Security-Policy": _CSP,
                                 "X-Content-Type-Options": "nosniff"})


@api.get("/vitrine.js", summary="The browser client: events (batched, retried, idempotent) and a page's "
                                "recommendations and variants in one call (docs/browser.md)",
         responses={"200": {"description": "An ES module", "content": {"text/javascript": {}}}})
async def vitrine_js(request: web.Request, p: dict) -> web.Response:
    # A stable path storefronts import; short cache so a Vitrine upgrade reaches browsers soon.
    return _file("vitrine.js", "text/javascript", "public, max-age=300")


@api.get("/dashboard", summary="The operator dashboard (HTML; its data needs the admin token, typed in "
                               "the page or given as #token=… in its address)",
         responses={"200": {"description": "A self-contained HTML page", "content": {"text/html": {}}}})
async def dashboard(request: web.Request, p: dict) -> web.Response:
    return _file("dashboard.html", "text/html", "no-store")


DEMO_FILES = {"": ("index.html", "text/html"), "shop.js": ("shop.js", "text/javascript"),
              "shop.css": ("shop.css", "text/css")}


@api.get("/demo/{file}", summary="The demo storefront (when `server.demo` is on): the synthetic catalog as a "
                                 "shop built on vitrine.js",
         params=(Param("file", "`` (the shop), `shop.js` or `shop.css`.", where="path"),),
         responses={"200": {"description": "The shop's files", "content": {"text/html": {}}}}, errors=(404,))
async def demo(request: web.Request, p: dict) -> web.Response:
    found = DEMO_FILES.get(p["file"])
    if not request.app[SETTINGS].server.demo or found is None:
        raise NotFound("no such page (the demo shop is on with server.demo, as `vitrine demo` sets it)")
    return _file(f"demo/{found[0]}", found[1], "no-store")


@api.get("/demo/", summary="The demo storefront's page (when `server.demo` is on)",
         responses={"200": {"description": "The shop", "content": {"text/html": {}}}}, errors=(404,))
async def demo_index(request: web.Request, p: dict) -> web.Response:
    if not request.app[SETTINGS].server.demo:
        raise NotFound("no such page (the demo shop is on with server.demo, as `vitrine demo` sets it)")
    return _file("demo/index.html", "text/html", "no-store")
