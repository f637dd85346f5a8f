"""The operator dashboard and the model versions behind it."""

import shutil

import orjson

from models import artifact
from server.app import create_app
from tests.browser import rendered_dom, screenshot
from tests.server.conftest import make_settings

TOKEN = "ops-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _settings(model_store, redis_url, tmp_path):
    return make_settings(model_store, redis_url, tmp_path, **{"server.admin_token": TOKEN})


async def test_versions_are_listed_and_a_rollback_is_checked_first(aiohttp_client, model_store, redis_url,
                                                                  tmp_path):
    store = tmp_path / "models"
    shutil.copytree(model_store, store)
    before = artifact.current_version(store)
    older = "20000101T000000Z-000000aa"
    shutil.copytree(store / before, store / older)
    manifest = orjson.loads((store / older / "manifest.json").read_bytes())
    (store / older / "manifest.json").write_bytes(orjson.dumps({**manifest, "version": older}))
    broken = "20000101T000000Z-000000bb"
    shutil.copytree(store / before, store / broken)
    (store / broken / "index.faiss").write_bytes(b"not an index")
    client = await aiohttp_client(create_app(_settings(store, redis_url, tmp_path)))

    assert (await client.get("/v1/admin/models")).status == 401
    versions = await (await client.get("/v1/admin/models", headers=AUTH)).json()
    assert [v["version"] for v in versions] == [before, broken, older]
    assert [v["current"] for v in versions] == [True, False, False]

    refused = await client.post("/v1/admin/models/current", json={"version": broken}, headers=AUTH)
    assert refused.status == 400 and "refused" in (await refused.json())["detail"]
    assert artifact.current_version(store) == before  # CURRENT never pointed at it
    missing = await client.post("/v1/admin/models/current", json={"version": "nope"}, headers=AUTH)
    assert missing.status == 404
    ok = await client.post("/v1/admin/models/current", json={"version": older}, headers=AUTH)
    assert ok.status == 200 and (await ok.json())["version"] == older
    assert artifact.current_version(store) == older
    body = await (await client.get("/v1/recommendations", params={"k": 3})).json()
    assert body["model_version"] == older


async def test_the_dashboard_renders_its_charts_and_refuses_without_the_token(aiohttp_server,
                                                                              model_store, redis_url,
                                                                              tmp_path):
    server = await aiohttp_server(create_app(_settings(model_store, redis_url, tmp_path)))
    base = f"http://127.0.0.1:{server.port}/dashboard"
    dom = await rendered_dom(f"{base}#token={TOKEN}", tmp_path / "profile", budget_ms=15_000)
    assert 'data-rendered="true"' in dom
    assert artifact.current_version(model_store) in dom  # the served model, in its card
    assert dom.count('class="series"') >= 4  # the four live charts
    assert "serving" in dom  # the versions table marks the current one
    refused = await rendered_dom(base, tmp_path / "profile2")
    assert "needs the admin token" in refused and 'data-rendered="true"' not in refused
    shot = await screenshot(f"{base}#token={TOKEN}", tmp_path / "dashboard.png", tmp_path / "profile3",
                            budget_ms=15_000)
    assert shot.stat().st_size > 10_000
