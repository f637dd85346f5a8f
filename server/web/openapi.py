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

REF = "#/components/schemas/{name}"
ERROR_TEXT = {400: "Bad request (the `parameter` or field is named)", 401: "Missing or wrong admin token",
              404: "Unknown item or category", 405: "Method not allowed (`Allow` lists the methods)",
              413: "Too many events or items, or body too large",
              422: "Nothing valid in the body (each problem is explained)",
              501: "A feature this install lacks (the detail names the extra to install)",
              503: "Not ready, or Redis unavailable (events are not acknowledged: retry)"}


def _json(name: str) -> dict:
    return {"content": {"application/json": {"schema": {"$ref": REF.format(name=name)}}}}


def _operation(op: Operation, settings: Settings) -> dict:
    out: dict = {"operationId": op.handler.__name__, "summary": op.summary, "tags": [op.tag]}
    if op.description:
        out["description"] = op.description
    if op.params:
        out["parameters"] = [p.openapi(settings) for p in op.params]
    if op.body is not None:
        out["requestBody"] = op.body
    responses: dict = {}
    if op.response is not None:
        responses["200"] = {"description": "OK", **_json(op.response.__name__)}
    responses.update(op.responses)
    for status in (*op.errors, *((401,) if op.admin and settings.server.admin_token else ())):
        responses[str(status)] = {"description": ERROR_TEXT[status], **_json("ErrorBody")}
    out["responses"] = responses
    if op.admin:
        out["security"] = [{"adminToken": []}]
    return out


def document(apis: list[Api], settings: Settings) -> dict:
    types = {ErrorBody}
    paths: dict[str, dict] = {}
    for api in apis:
        for op in api.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, settings)
            types.update(t for t in (op.response, *op.schemas) if t is not None)
    _, components = msgspec.json.schema_components(sorted(types, key=lambda t: t.__name__), ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Vitrine", "version": "1", "description":
                 "Real-time personalization and recommendations for online stores."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "adminToken": {"type": "http", "scheme": "bearer",
                           "description": "`server.admin_token` (VITRINE_SERVER_ADMIN_TOKEN)"}}},
    }


def markdown(apis: list[Api], settings: Settings) -> str:
    """One section per endpoint: its summary and a table of its parameters, from the declarations
    (with the default settings' bounds)."""
    out = []
    for api in apis:
        for op in api.operations:
            admin = " (admin)" if op.admin else ""
            out += [f"### `{op.method} {op.path}`", "", f"{op.summary}{admin}.", ""]
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

