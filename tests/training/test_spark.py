"""The Spark engine in local mode on a small store: same confidence pairs as the in-memory
path, the same artifact (loadable by the server's loader), a model that beats popularity.

Marked `spark`; skipped where pyspark or Java is missing, except under CI (REQUIRE_SPARK_TESTS=1,
set by .ci/run), where a missing piece is a failure rather than a silent skip.
"""

import importlib.util
import os
import shutil

import numpy as np
import pytest

from models import archive, artifact
from models.tombstones import write_tombstone
from training.config import TrainConfig
from training.interactions import confidence_matrix
from training.readers import read_event_table
from training.synthetic import generate_store
from training.writers import write_archive

_MISSING = [what for what, ok in (("pyspark", importlib.util.find_spec("pyspark") is not None),
                                  ("java", shutil.which("java") is not None)) if not ok]
if _MISSING and os.environ.get("REQUIRE_SPARK_TESTS") == "1":
    raise RuntimeError(f"Spark tests required but {', '.join(_MISSING)} missing (see .ci/run)")
pytestmark = [pytest.mark.spark, pytest.mark.skipif(
    bool(_MISSING), reason=f"needs {', '.join(_MISSING)} (vitrine[spark], Java 17)")]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A small store in an archive, with one erased shopper and anonymous sessions."""
    root = tmp_path_factory.mktemp("spark") / "archive"
    store = generate_store(n_items=600, n_users=400, n_events=25_000, seed=7)
    write_archive(store.log, root, session=store.session, anonymous=store.session % 4 == 0)
    write_tombstone(root, user_ids=[store.log.user_ids[0]])
    return root, store


def test_spark_builds_the_same_confidence_pairs_as_the_in_memory_path(shop):
    from training.spark import frame
    from training.spark.session import spark_session

    root, _ = shop
    config = TrainConfig()
    events, counts = frame.clean(frame.normalise(frame.read_archive(spark_session(), str(root), None, None)))
    events = events.where(~events.user.isin(_erased_users(root)))  # as train_spark leaves them out
    pairs = frame.confidence_pairs(events, config.event_weights, None).toArrow()
    log, _ = read_event_table(archive.read_window(root), "archive")
    matrix = confidence_matrix(log, config.event_weights).tocoo()
    expected = {(log.user_ids[u], log.item_ids[i]): c for u, i, c in zip(matrix.row, matrix.col, matrix.data,
                                                                          strict=True)}
    got = dict(zip(zip(pairs["user"].to_pylist(), pairs["item"].to_pylist(), strict=True),
                   pairs["c"].to_pylist(), strict=True))
    assert got.keys() == expected.keys()
    assert all(abs(got[k] - expected[k]) < 1e-4 for k in expected)
    assert counts["kept"] == archive.read_window(root, tombstones=False).num_rows


def _erased_users(root) -> list[str]:
    from models.tombstones import read_tombstones

    return sorted(read_tombstones(root).user_ids)


def test_vitrine_train_engine_spark_publishes_the_artifact_the_server_loads(shop, tmp_path):
    from vitrine.cli import main

    root, store = shop
    models = tmp_path / "models"
    assert main(["train", "--engine", "spark", "--archive", str(root), "--store", str(models),
                 "--eval-seeds", "1", "--iterations", "6", "--spark-driver-memory", "1g"]) == 0
    model = artifact.load_current(models)  # every file present, shapes consistent
    m = model.manifest
    assert m["params"]["engine"] == "spark" and m["source"]["engine"] == "spark"
    sg = m["metrics"]["strong_generalization"]
    assert sg["model"]["recall@20"]["mean"] >= 2 * sg["popularity"]["recall@20"]["mean"]
    assert model.item_factors.shape[1] == 64 and model.gram.shape == (64, 64)
    assert np.abs(model.item_factors).sum() > 0 and model.index.ntotal == len(model.items.ids)
    assert _erased_users(root)[0] not in set(model.user_ids)
    assert len(model.segments["users"]) > 0 and model.popularity.max() > 0
    # the item table comes from the events (categories the generator gave)
    i = model.items.ids.index(store.log.item_ids[3])
    assert model.items.category[i] == store.log.item_category[3]


def test_the_pipeline_chooses_spark_by_name(shop, tmp_path):
    from training.pipeline import train

    _, store = shop
    config = TrainConfig(store=tmp_path / "models", engine="spark", eval_seeds=1, iterations=4,
                         eval_temporal=False)
    result = train(store.log, config)
    assert result.manifest["params"]["engine"] == "spark"
    assert result.manifest["data_until_ms"] == int(store.log.ts.max())  # what retrain's gate reads
    assert artifact.load_current(config.store).version == result.version
