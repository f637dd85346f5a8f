import numpy as np
import pytest

from models import artifact
from models.events import DEFAULT_EVENT_WEIGHTS
from training.config import TrainConfig
from training.pipeline import train
from training.report import format_report
from training.synthetic import generate_store
from vitrine.cli import main


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    store = generate_store(n_items=1500, n_users=800, n_events=60_000, seed=1)
    config = TrainConfig(store=tmp_path_factory.mktemp("store"), eval_seeds=2, eval_holdout_users=120,
                         iterations=8)
    return store, config, train(store.log, config)


def test_model_beats_popularity_on_the_synthetic_store(published):
    _, _, result = published
    sg = result.manifest["metrics"]["strong_generalization"]
    assert sg["seeds"] == 2
    assert sg["model"]["recall@20"]["mean"] >= 2 * sg["popularity"]["recall@20"]["mean"]
    assert "temporal" in result.manifest["metrics"]


def test_published_model_is_loadable_and_records_the_contract(published):
    store, config, result = published
    model = artifact.load_current(config.store)
    assert model.version == result.version
    assert model.event_weights == DEFAULT_EVENT_WEIGHTS
    # The ALS the search chose is what was fitted, and what the server's fold-in reads back.
    als = model.manifest["model"]["als"]
    assert {k: model.params[k] for k in als} == als
    assert model.item_factors.shape == (1500, als["factors"]) and model.index.ntotal == 1500
    assert model.manifest["data_fingerprint"] == store.log.fingerprint()
    assert set(model.manifest["timings_s"]) >= {"fit", "index", "evaluate"}
    assert "publish" in result.timings
    # consumables come from the catalog flag the generator set
    assert model.items.consumable.sum() == store.log.item_consumable.sum()
    assert len(model.segments["users"]) == len(model.segments["segment"]) > 0


def test_the_published_model_is_the_searched_one_with_its_serving_contract(published):
    _, config, result = published
    model = artifact.load_current(config.store)
    manifest = model.manifest
    search = manifest["search"]
    assert search["mode"] == "quick" and search["winner"]["family"] == manifest["model"]["family"]
    assert search["validation"]["excluded_held_out_users"] > 0
    # The item-item rows are published exactly when the chosen family uses them.
    uses_itemitem = manifest["model"]["family"] != "als"
    assert (model.neighbours is not None) == uses_itemitem == ("itemitem" in manifest["model"])
    assert model.session_blend.as_dict() == manifest["serving"]["blend"]
    assert model.session_items == search["session_items"]["chosen"]
    report = format_report(manifest)
    assert f"model: {manifest['model']['family']}" in report and "model search (quick" in report


def test_short_sessions_are_never_below_popularity(published):
    _, _, result = published
    sessions = result.manifest["metrics"]["strong_generalization"]["sessions"]
    assert set(sessions) == {"1", "2"}
    for rows in sessions.values():
        assert rows["model"]["recall@20"]["mean"] >= rows["popularity"]["recall@20"]["mean"]


def test_search_off_fits_the_configured_als_alone(tmp_path):
    store = generate_store(n_items=300, n_users=200, n_events=8_000, seed=2)
    config = TrainConfig(store=tmp_path, search="off", evaluate=False, factors=16, iterations=3)
    manifest = train(store.log, config).manifest
    assert manifest["model"] == {"family": "als", "als": {"factors": 16, "regularization": 0.05, "alpha": 2.0,
                                                          "iterations": 3}}
    assert "search" not in manifest and manifest["serving"]["session_items"] == 50
    assert artifact.load_current(tmp_path).neighbours is None


def test_a_log_too_small_to_validate_on_trains_the_configured_model(tmp_path):
    store = generate_store(n_items=60, n_users=12, n_events=300, seed=5)
    manifest = train(store.log, TrainConfig(store=tmp_path, evaluate=False, factors=8, iterations=2)).manifest
    assert "skipped" in manifest["search"] and manifest["model"]["family"] == "als"
    assert manifest["model"]["als"]["factors"] == 8
    assert "model search: skipped" in format_report(manifest)


def test_item_neighbours_share_a_style(published):
    store, config, _ = published
    model = artifact.load_current(config.store)
    rng = np.random.default_rng(0)
    pop = model.popularity
    probes = rng.choice(np.flatnonzero(pop >= np.quantile(pop, 0.5)), 50, replace=False)
    _, nn = model.index.search(np.ascontiguousarray(model.item_factors[probes]), 6)
    same = (store.item_style[nn[:, 1:]] == store.item_style[probes, None]).mean()
    assert same > 0.5


def test_cli_train_reports_bad_input_without_traceback(tmp_path, capsys):
    bad = tmp_path / "events.csv"
    bad.write_text("event_id,session_id,type,ts,user_id,item_id\ne1,s1,zap,1700000000000,u1,i1\n")
    assert main(["train", str(bad), "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "events.csv:2: field `type`: unknown event type" in err and "Traceback" not in err
    assert main(["train", str(tmp_path / "missing.csv"), "--store", str(tmp_path / "s")]) == 2


def test_cli_train_generate_and_list(tmp_path, capsys):
    events = tmp_path / "events.parquet"
    assert main(["generate", str(events), "--items", "300", "--users", "200", "--n-events", "8000",
                 "--catalog", str(tmp_path / "catalog.csv")]) == 0
    store = tmp_path / "store"
    assert main(["train", str(events), "--catalog", str(tmp_path / "catalog.csv"), "--store", str(store),
                 "--eval-seeds", "1", "--iterations", "3"]) == 0
    assert main(["models", "list", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "strong generalization" in out and "published" in out
    assert out.count("* 2") == 1  # exactly one CURRENT version listed
