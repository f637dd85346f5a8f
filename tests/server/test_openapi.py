"""The OpenAPI document comes from the route declarations: every parameter is described with the
bounds the server enforces (from its settings), and docs/api.md's reference is the same text."""

from pathlib import Path

from server.app import API_GROUPS, create_app
from server.recommend.routes import PLACEMENTS
from server.settings import Settings
from server.web.openapi import markdown
from tests.server.conftest import make_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _params(doc, path, method="get"):
    return {p["name"]: p for p in doc["paths"][path][method].get("parameters", [])}


async def test_parameters_carry_the_served_bounds(aiohttp_client, model_store, redis_url, tmp_path):
    settings = make_settings(model_store, redis_url, tmp_path, **{"recommend.max_k": 37,
                                                                  "recommend.default_k": 7})
    client = await aiohttp_client(create_app(settings))
    doc = await (await client.get("/openapi.json")).json()
    recs = _params(doc, "/v1/recommendations")
    assert recs["placement"]["schema"]["enum"] == list(PLACEMENTS)
    assert recs["k"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 37, "default": 7}
    assert recs["item_id"]["schema"]["type"] == "array" and recs["exclude"]["schema"]["maxItems"] == 500
    assert _params(doc, "/v1/items/{item_id}/similar")["item_id"]["required"] is True
    assert _params(doc, "/v1/items/similar")["item_id"]["required"] is True
    # What the document says is what the server does.
    assert (await client.get("/v1/recommendations", params={"k": 37})).status == 200
    over = await client.get("/v1/recommendations", params={"k": 38})
    assert over.status == 400 and (await over.json())["parameter"] == "k"
    body = await (await client.get("/v1/recommendations")).json()
    assert len(body["items"]) == 7


async def test_every_declared_parameter_is_validated(client):
    doc = await (await client.get("/openapi.json")).json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            required = {p["name"]: "a" for p in op.get("parameters", [])
                        if p["required"] and p["in"] == "query"}
            for p in op.get("parameters", []):
                if p["in"] != "query" or "maxLength" not in p["schema"]:
                    continue
                too_long = "x" * (p["schema"]["maxLength"] + 1)
                resp = await client.request(method.upper(), path, params={**required, p["name"]: too_long})
                assert resp.status in (400, 404), (path, p["name"])
                assert (await resp.json())["parameter"] == p["name"]


def test_docs_api_reference_is_generated_from_the_declarations():
    assert markdown(API_GROUPS, Settings()) in DOCS.read_text(), \
        "docs/api.md is stale: run `python -m vitrine.docs`"
