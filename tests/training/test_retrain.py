"""`vitrine retrain`: a worse candidate is refused and CURRENT stays; a good one is published."""

import shutil
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from models import artifact
from models.retrain import EXIT_KEPT, EXIT_PUBLISHED, read_outcome
from models.tombstones import write_tombstone
from training.config import TrainConfig
from training.pipeline import train
from training.retrain import RetrainOptions, run_once
from training.synthetic import DAY_MS, DEFAULT_START_MS, generate_store
from training.writers import write_archive
from vitrine.cli import main

DAYS = 56
UNTIL = datetime.fromtimestamp((DEFAULT_START_MS + (DAYS + 30) * DAY_MS) / 1000, UTC)  # returns come late


def archive_of(log, root, session) -> None:
    write_archive(log, root, session=session)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A store whose served model was trained on the first 40 days with the configured ALS (no
    model search, as before the search existed: the first retrain after an upgrade), and two
    archives of all 56: the real one and one with the items shuffled across events (nothing
    left to learn)."""
    base = tmp_path_factory.mktemp("retrain")
    store = generate_store(n_items=800, n_users=600, n_events=50_000, seed=4)
    log = store.log
    config = TrainConfig(store=base / "models", eval_seeds=1, iterations=8, eval_temporal=False)
    first = train(log.select(log.ts < DEFAULT_START_MS + 40 * DAY_MS), replace(config, search="off"))
    archive_of(log, base / "archive", store.session)
    shuffled = log.select(np.ones(len(log), bool))
    has_item = shuffled.item >= 0
    shuffled.item = shuffled.item.copy()
    shuffled.item[has_item] = np.random.default_rng(0).permutation(shuffled.item[has_item])
    archive_of(shuffled, base / "shuffled", store.session)
    return base, config, first.version


def test_a_shuffled_archive_is_refused_and_current_stays(shop, tmp_path):
    base, config, served = shop
    store = tmp_path / "models"
    artifact_dir = base / "models" / served
    store.mkdir()
    shutil.copytree(artifact_dir, store / served)  # a copy: the store refuses symlinks out of it
    artifact.set_current(store, served)
    code = main(["retrain", "--archive", str(base / "shuffled"), "--store", str(store),
                 "--days", str(DAYS + 30), "--until", UNTIL.isoformat()])
    assert code == EXIT_KEPT
    assert artifact.current_version(store) == served
    outcome = read_outcome(store)
    assert outcome.outcome == "kept" and "popularity" in outcome.reason
    assert outcome.candidate.version is None and outcome.current.version == served
    # Scored on shuffled events too, the served model can't show it either: the gate against
    # popularity is what refuses a candidate that learnt nothing.
    assert outcome.candidate.metrics["recall@20"] < outcome.candidate.metrics["popularity_recall@20"]
    assert [v["version"] for v in artifact.list_versions(store)] == [served]


def test_a_candidate_worse_than_the_served_model_is_kept_out(shop, tmp_path):
    base, config, served = shop
    store = tmp_path / "models"
    store.mkdir()
    shutil.copytree(base / "models" / served, store / served)
    artifact.set_current(store, served)
    # 4 factors, 2 sweeps: still ~1.5× popularity (passes that gate), well below the served model.
    weak = TrainConfig(store=store, factors=4, iterations=2, eval_seeds=1, search="off")
    outcome = run_once(RetrainOptions(archive=str(base / "archive"), days=DAYS + 30, until=UNTIL), weak)
    assert outcome.outcome == "kept" and "served model" in outcome.reason
    assert artifact.current_version(store) == served


def test_a_normal_retrain_publishes_and_records_both_scores(shop, capsys):
    base, config, served = shop
    store = base / "models"
    code = main(["retrain", "--archive", str(base / "archive"), "--store", str(store),
                 "--days", str(DAYS + 30), "--until", UNTIL.isoformat()])
    out = capsys.readouterr().out
    assert code == EXIT_PUBLISHED, out
    outcome = read_outcome(store)
    new = artifact.current_version(store)
    assert outcome.outcome == "published" and new != served and outcome.candidate.version == new
    assert outcome.current.version == served and outcome.served == new
    assert outcome.candidate.metrics["recall@20"] >= outcome.current.metrics["recall@20"] - 0.01
    assert outcome.validation["users"] > 50 and outcome.window["events"] == 50_000
    model = artifact.load_current(store)  # complete and loadable, as the server will load it
    assert model.manifest["source"]["retrain_gate"]["current_version"] == served
    # The published model is the one the gate scored: the search ran once, on the history.
    assert model.manifest["search"]["reused"] is True and model.manifest["model"]["family"]
    assert "retrain published" in out


def test_the_served_model_is_scored_only_on_events_it_did_not_learn_from(shop, tmp_path):
    """A model trained on events up to 2.5 days before the newest has seen half of the default
    validation period (the newest 10% of the window's events, ~5 days here): the period starts
    after its newest event instead, for both models."""
    base, config, _ = shop
    store = generate_store(n_items=800, n_users=600, n_events=50_000, seed=4).log
    recent = train(store.select(store.ts < DEFAULT_START_MS + 46 * DAY_MS),
                   replace(config, store=tmp_path / "models", search="off"))
    seen = recent.manifest["data_until_ms"]
    assert seen == int(store.ts[store.ts < DEFAULT_START_MS + 46 * DAY_MS].max())
    assert np.quantile(store.ts, 0.9) < seen  # the plain split would overlap what it learnt
    outcome = run_once(RetrainOptions(archive=str(base / "archive"), days=DAYS + 30, until=UNTIL),
                       replace(config, store=tmp_path / "models", search="off"))
    assert outcome.validation["cutoff_ms"] == seen + 1, outcome
    assert "after the served model's newest" in outcome.validation["protocol"]
    assert outcome.validation["users"] > 20 and outcome.current.metrics["recall@20"] > 0


def test_a_served_model_that_learnt_the_whole_window_is_kept_with_the_reason(shop, tmp_path):
    base, config, _ = shop
    log = generate_store(n_items=800, n_users=600, n_events=50_000, seed=4).log
    served = train(log, replace(config, store=tmp_path / "models", search="off")).version
    outcome = run_once(RetrainOptions(archive=str(base / "archive"), days=DAYS + 30, until=UNTIL),
                       replace(config, store=tmp_path / "models", search="off"))
    assert outcome.outcome == "kept" and "leave 0 shoppers to compare" in outcome.reason, outcome
    assert artifact.current_version(tmp_path / "models") == served
    # A few days unseen but too few shoppers in them to tell the models apart: kept as well.
    recent = train(log.select(log.ts < log.ts.max() - DAY_MS), replace(config, store=tmp_path / "models",
                                                                        search="off")).version
    outcome = run_once(RetrainOptions(archive=str(base / "archive"), days=DAYS + 30, until=UNTIL,
                                      min_validation_users=10_000), replace(config, store=tmp_path / "models",
                                                                           search="off"))
    assert outcome.outcome == "kept" and "fewer than 10000" in outcome.reason, outcome
    assert artifact.current_version(tmp_path / "models") == recent


def test_retrain_leaves_erased_shoppers_out(shop, tmp_path):
    base, _, _ = shop
    root = tmp_path / "archive"
    store = generate_store(n_items=300, n_users=200, n_events=12_000, seed=5)
    archive_of(store.log, root, store.session)
    erased = store.log.user_ids[:20]
    write_tombstone(root, user_ids=erased)
    config = TrainConfig(store=tmp_path / "models", eval_seeds=1, iterations=3)
    # A small store: the gate against popularity is not what this test is about.
    outcome = run_once(RetrainOptions(archive=str(root), days=DAYS + 30, until=UNTIL, min_lift=0.0), config)
    assert outcome.outcome == "published", outcome.reason
    users = set(artifact.load_current(config.store).user_ids)
    assert users and not users & set(erased)
    assert outcome.window["events"] < 12_000


def test_every_takes_a_number_and_a_unit():
    from argparse import ArgumentTypeError

    from training.retrain import parse_every

    assert parse_every("6h") == 21_600 and parse_every("30m") == 1_800 and parse_every("1.5d") == 129_600
    with pytest.raises(ArgumentTypeError):
        parse_every("6 hours")


def test_vitrine_train_reads_an_archive_window_with_anonymous_sessions(tmp_path, capsys):
    store = generate_store(n_items=300, n_users=200, n_events=12_000, seed=6)
    root = tmp_path / "archive"
    write_archive(store.log, root, session=store.session, anonymous=store.session % 3 == 0)
    until = datetime.fromtimestamp((DEFAULT_START_MS + 28 * DAY_MS) / 1000, UTC).isoformat()
    assert main(["train", "--archive", str(root), "--days", "14", "--until", until, "--store",
                 str(tmp_path / "models"), "--eval-seeds", "1", "--iterations", "2"]) == 0
    model = artifact.load_current(tmp_path / "models")
    half = store.log.select((store.log.ts >= DEFAULT_START_MS + 14 * DAY_MS)
                            & (store.log.ts < DEFAULT_START_MS + 28 * DAY_MS))
    assert model.manifest["counts"]["events"] == len(half)
    assert any(u.startswith("s:") for u in model.user_ids)  # anonymous sessions trained on
