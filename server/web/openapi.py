"""The OpenAPI 3.1 document and the endpoint tables of docs/api.md, both generated from the
routes' declarations (server/web/api.py) and the msgspec types the server encodes and decodes,
so the documentation and the server can't disagree.

    vitrine openapi              # print the document
    vitrine openapi --markdown   # print the generated part of docs/api.md
"""

from __future__ import annotations

import msgspec

from server.schemas import ErrorBody
from server.settings import Settings
from server.web.api import Api, Operation
from server.web.security import PUBLIC_HEADER, Credentials

REF = "#/components/schemas/{name}"
ERROR_TEXT = {400: "Bad request (the `parameter` or field is named)",
              401: "Missing or wrong API key or admin token",
              404: "Unknown item or category", 405: "Method not allowed (`Allow` lists the methods)",
              413: "Too many events or items, or body too large",
              422: "Nothing valid in the body (each problem is explained)",
              429: "Over this key's event rate: nothing stored, retry after `Retry-After` seconds",
              501: "A feature this install lacks (the detail names the extra to install)",
              503: "Not ready, or Redis unavailable (events are not acknowledged: retry)"}


def _json(name: str) -> dict:
    return {"content": {"application/json": {"schema": {"$ref": REF.format(name=name)}}}}


HTTP_LAYER_400 = ("; a request line over server.max_body_bytes or a header over 8 KiB is refused by the "
                  "HTTP layer, in text/plain")
SECURITY = {"public": [{"apiKey": []}, {"adminToken": []}], "admin": [{"adminToken": []}]}
AUTH_TEXT = {"public": "a storefront key", "admin": "admin", None: "none"}


def _operation(op: Operation, settings: Settings, credentials: Credentials) -> dict:
    out: dict = {"operationId": op.handler.__name__, "summary": op.summary, "tags": [op.tag]}
    if op.description:
        out["description"] = op.description
    if op.params:
        out["parameters"] = [p.openapi(settings) for p in op.params]
    if op.body is not None:
        out["requestBody"] = op.body(settings) if callable(op.body) else op.body
    responses: dict = {}
    if op.response is not None:
        responses["200"] = {"description": "OK", **_json(op.response.__name__)}
    responses.update(op.responses)
    enforced = credentials.enforced(op.auth)
    for status in sorted((*op.errors, *((401,) if enforced else ()))):
        responses[str(status)] = {"description": ERROR_TEXT[status], **_json("ErrorBody")}
    # Any request: aiohttp's HTTP parser refuses a request line over its limit (the app raises it
    # to server.max_body_bytes) or a header over 8 KiB before the application sees it, with a
    # text/plain 400.
    bad = responses.get("400") or {"description": "Bad request", **_json("ErrorBody")}
    responses["400"] = {"description": bad["description"] + HTTP_LAYER_400,
                        "content": {**bad.get("content", {}), "text/plain": {"schema": {"type": "string"}}}}
    out["responses"] = dict(sorted(responses.items()))
    # What this server enforces: with no key configured, nothing is declared (and /readyz warns).
    if enforced:
        out["security"] = SECURITY[op.auth]
    return out


def document(apis: list[Api], settings: Settings) -> dict:
    types = {ErrorBody}
    paths: dict[str, dict] = {}
    credentials = Credentials(settings.security)
    for api in apis:
        for op in api.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, settings, credentials)
            types.update(t for t in (op.response, *op.schemas) if t is not None)
    ordered = sorted(types, key=lambda t: t.__name__)
    _, components = msgspec.json.schema_components(ordered, ref_template=REF)
    for t in ordered:  # what a type's fields can't say (models/events.py: item_id for item events)
        components[t.__name__].update(getattr(t, "__json_schema_extra__", {}))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Vitrine", "version": "1", "description":
                 "Real-time personalization and recommendations for online stores."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": PUBLIC_HEADER,
                       "description": "a storefront key: one of `security.public_keys` "
                                      "(VITRINE_SECURITY_PUBLIC_KEYS)"},
            "adminToken": {"type": "http", "scheme": "bearer",
                           "description": "`security.admin_token` (VITRINE_SECURITY_ADMIN_TOKEN)"}}},
    }


def as_served(doc: dict, now_ms: int) -> dict:
    """The document with clock-relative bounds resolved: a field marked `x-max-ahead-ms` (an
    event's `ts`) gets `maximum` = the server's clock plus that, as the server enforces it now."""
    schemas = dict(doc["components"]["schemas"])
    out = {**doc, "components": {**doc["components"], "schemas": schemas}}
    for name, schema in doc["components"]["schemas"].items():
        ahead = {f: p["x-max-ahead-ms"] for f, p in schema.get("properties", {}).items()
                 if "x-max-ahead-ms" in p}
        if ahead:
            schemas[name] = schema = {**schema, "properties": dict(schema["properties"])}
            for field, ms in ahead.items():
                prop = schema["properties"][field]
                schema["properties"][field] = {**prop, "maximum": min(prop.get("maximum", now_ms + ms),
                                                                      now_ms + ms)}
    return out


def markdown(apis: list[Api], settings: Settings) -> str:
    """One section per endpoint: its summary and a table of its parameters, from the declarations
    (with the default settings' bounds)."""
    out = []
    for api in apis:
        for op in api.operations:
            out += [f"### `{op.method} {op.path}`", "", f"{op.summary}. Key: {AUTH_TEXT[op.auth]}.", ""]
            if op.params:
                out += ["| parameter | in | type | meaning |", "| --- | --- | --- | --- |"]
                for p in op.params:
                    out.append(f"| `{p.name}`{' (required)' if p.required or p.where == 'path' else ''} "
                               f"| {p.where} | {_type(p.schema(settings))} | {p.description} |")
                out.append("")
            errors = ", ".join(str(s) for s in op.errors)
            if errors:
                out += [f"Errors: {errors}.", ""]
    return "\n".join(out).rstrip() + "\n"


def _type(schema: dict) -> str:
    if schema["type"] == "array":
        if "enum" in schema["items"]:
            names = ", ".join(f"`{v}`" for v in schema["items"]["enum"])
            return f"any of {names} (repeat or comma-separate)"
        return f"ids (repeat or comma-separate; ≤ {schema['maxItems']})"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"]) + f" (default `{schema.get('default')}`)"
    if schema.get("contentMediaType") == "application/json":
        return f"JSON object ≤ {schema['maxLength']} characters"
    if schema["type"] == "integer":
        text = f"integer {schema.get('minimum', '')}..{schema.get('maximum', '')}"
        return text + (f" (default {schema['default']})" if "default" in schema else "")
    return f"string ≤ {schema['maxLength']}"

