"""Every bad model is refused with a clear reason, by the same checks, on reload, at start and
by `vitrine models use`; the server keeps serving the version it had."""

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest

from models import artifact
from server.app import create_app
from tests.server.conftest import make_settings, until
from vitrine.cli import main

BAD = "29990101T000000Z-0000bad0"


def _manifest(d: Path, change) -> None:
    m = orjson.loads((d / "manifest.json").read_bytes())
    change(m)
    (d / "manifest.json").write_bytes(orjson.dumps(m))


def _npy(d: Path, name: str, change) -> None:
    a = np.load(d / name)
    np.save(d / name, change(a))


def _nan(a):
    a = a.copy()
    a[3, 1] = np.nan
    return a


def _other_index(d: Path) -> None:
    import faiss

    y = np.load(d / "item_factors.npy")
    index = faiss.IndexFlatIP(y.shape[1])
    index.add(np.ascontiguousarray(y[::-1]))  # the right shape, another model's vectors
    faiss.write_index(index, str(d / "index.faiss"))


def _truncate(d: Path) -> None:
    f = d / "item_factors.npy"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


# (defect, what reload_error must say)
DEFECTS = {
    "no params": (lambda d: _manifest(d, lambda m: m.pop("params")), "missing required field `params`"),
    "null event weights": (lambda d: _manifest(d, lambda m: m["params"].update(event_weights=None)),
                           "Expected `object`, got `null` - at `$.params.event_weights`"),
    "renamed manifest": (lambda d: _manifest(d, lambda m: m.update(version="20200101T000000Z-00000000")),
                         "but its directory is"),
    "NaN factors": (lambda d: _npy(d, "item_factors.npy", _nan), "item_factors.npy: NaN or infinite"),
    "float64 factors": (lambda d: _npy(d, "item_factors.npy", lambda a: a.astype(np.float64)),
                        "item_factors.npy: expected float32"),
    "Gram of another size": (lambda d: _npy(d, "gram.npy", lambda a: a[:-1, :-1]), "gram.npy: expected"),
    "index of another model": (_other_index, "index.faiss: its vectors are not the item factors"),
    "truncated factors": (_truncate, "cannot load model"),
}


def _bad_version(store: Path, defect) -> str:
    good = artifact.current_version(store)
    shutil.copytree(store / good, store / BAD)
    _manifest(store / BAD, lambda m: m.update(version=BAD))
    defect(store / BAD)
    return BAD


def _point_current(store: Path, version: str) -> None:
    """By hand, as an operator's script might: `set_current` itself would refuse it."""
    (store / artifact.CURRENT).write_text(version + "\n")


@pytest.fixture
def store(model_store, tmp_path):
    copy = tmp_path / "models"
    shutil.copytree(model_store, copy)
    return copy


@pytest.mark.parametrize("name", list(DEFECTS))
async def test_a_bad_version_is_refused_on_reload_and_the_old_one_keeps_serving(
        name, aiohttp_client, store, redis_url, tmp_path):
    defect, message = DEFECTS[name]
    client = await aiohttp_client(create_app(make_settings(store, redis_url, tmp_path)))
    good = artifact.current_version(store)
    _point_current(store, _bad_version(store, defect))
    info = await (await client.post("/v1/admin/reload")).json()
    assert info["version"] == good and message in info["reload_error"] and BAD in info["reload_error"]
    resp = await client.get("/v1/recommendations")
    assert resp.status == 200 and (await resp.json())["model_version"] == good
    ready = await (await client.get("/readyz")).json()
    assert message in ready["detail"]

    _point_current(store, good)  # rolled back: the error is over

    async def cleared():
        return (await (await client.get("/v1/models/current")).json())["reload_error"] is None

    assert await until(cleared, timeout_s=2.0)


@pytest.mark.parametrize("name", ["no params", "NaN factors", "truncated factors"])
async def test_a_bad_version_at_start_is_refused_and_said_not_a_crash(name, aiohttp_client, store, redis_url,
                                                                      tmp_path):
    defect, message = DEFECTS[name]
    _point_current(store, _bad_version(store, defect))
    client = await aiohttp_client(create_app(make_settings(store, redis_url, tmp_path)))
    resp = await client.get("/readyz")
    assert resp.status == 503 and message in (await resp.json())["detail"]
    assert (await client.get("/v1/recommendations")).status == 503
    assert (await client.get("/healthz")).status == 200


@pytest.mark.parametrize("name", list(DEFECTS))
def test_models_use_runs_the_same_checks(name, store, monkeypatch, capsys):
    defect, message = DEFECTS[name]
    good = artifact.current_version(store)
    _bad_version(store, defect)
    monkeypatch.setenv("VITRINE_MODEL_STORE", str(store))
    assert main(["models", "use", BAD]) == 2
    err = capsys.readouterr().err
    assert "refused, CURRENT unchanged" in err and message in err
    assert artifact.current_version(store) == good


@pytest.mark.parametrize("name", ["../outside", "/tmp/outside", ".hidden", "a/b"])
def test_store_paths_are_confined_to_the_store(name, store, tmp_path, monkeypatch, capsys):
    outside = tmp_path / "outside"
    shutil.copytree(store / artifact.current_version(store), outside)  # a complete, valid model
    monkeypatch.setenv("VITRINE_MODEL_STORE", str(store))
    version = str(outside) if name.startswith("/") else name
    assert main(["models", "use", version]) == 2
    assert "is not a version of" in capsys.readouterr().err


async def test_a_current_leading_out_of_the_store_is_not_served(aiohttp_client, store, redis_url, tmp_path):
    shutil.copytree(store / artifact.current_version(store), tmp_path / "outside")
    _point_current(store, "../outside")
    client = await aiohttp_client(create_app(make_settings(store, redis_url, tmp_path)))
    resp = await client.get("/readyz")
    assert resp.status == 503 and "is not a version of" in (await resp.json())["detail"]


async def test_a_refused_version_is_tried_once_and_logged_once_not_every_interval(
        aiohttp_client, store, redis_url, tmp_path, caplog):
    client = await aiohttp_client(create_app(make_settings(store, redis_url, tmp_path)))  # 50 ms interval
    _point_current(store, _bad_version(store, DEFECTS["no params"][0]))

    async def refused():
        return (await (await client.get("/v1/models/current")).json())["reload_error"]

    assert await until(refused)
    await until(lambda: _never(), timeout_s=0.6)  # a dozen intervals
    errors = [r for r in caplog.records if r.name == "vitrine.model" and r.levelname == "ERROR"]
    assert len(errors) == 1
    metrics = await (await client.get("/metrics")).text()
    assert "vitrine_model_reload_errors_total 1.0" in metrics
    # Fixed in place (the missing field restored): tried again and served.
    _manifest(store / BAD, lambda m: m.update(params=orjson.loads(
        (store / BAD / "manifest.json").read_bytes()).get("params") or _params(store)))

    async def served():
        return (await (await client.get("/v1/models/current")).json())["version"] == BAD

    assert await until(served)


async def _never():
    return False


def _params(store: Path) -> dict:
    good = next(v for v in artifact.list_versions(store) if v["version"] != BAD)
    return good["manifest"]["params"]
