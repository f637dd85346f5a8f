import threading

import faiss
import numpy as np
import pytest

from models import artifact
from models.foldin import gram_matrix
from models.itemitem import Neighbours


def _write(version: str, n_items: int = 50, k: int = 4, index_info: dict | None = None,
           extra: dict | None = None, neighbours: Neighbours | None = None):
    rng = np.random.default_rng(len(version))
    y = rng.normal(size=(n_items, k)).astype(np.float32)
    index = faiss.IndexFlatIP(k)
    index.add(y)

    def write(directory):
        artifact.write_artifact(
            directory,
            manifest={"version": version, "created": "2026-01-01T00:00:00+00:00", "counts": {},
                      "params": {"event_weights": {"view": 1.0}, "regularization": 0.05, "alpha": 2.0},
                      **({"index": index_info} if index_info else {}), **(extra or {})},
            items=artifact.ItemMeta(ids=[f"i{i}" for i in range(n_items)], category=["c"] * n_items,
                                    price=np.ones(n_items), in_stock=np.ones(n_items, bool),
                                    consumable=np.zeros(n_items, bool)),
            item_factors=y, user_ids=["u0"], user_factors=np.zeros((1, k), np.float32),
            popularity=np.arange(n_items, dtype=np.float32), gram=gram_matrix(y), index=index,
            neighbours=neighbours)
    return write


def _version(i: int) -> str:
    return f"20260101T0000{i:02d}Z-{i:08x}"


def test_publish_load_roundtrip(tmp_path):
    artifact.publish(tmp_path, _version(1), _write(_version(1)))
    model = artifact.load_current(tmp_path)
    assert model.version == _version(1)
    assert model.item_index["i7"] == 7 and model.index.ntotal == 50
    assert isinstance(model.item_factors, np.memmap)


def test_reader_never_sees_a_half_written_version(tmp_path):
    artifact.publish(tmp_path, _version(0), _write(_version(0)), keep=100)
    errors, loads, done = [], [], threading.Event()

    def reader():
        while not done.is_set():
            try:
                loads.append(artifact.load_current(tmp_path).version)
            except Exception as exc:  # any failure to load a published version is the bug
                errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(1, 15):
        artifact.publish(tmp_path, _version(i), _write(_version(i), n_items=2000), keep=100)
    done.set()
    thread.join()
    assert not errors
    assert len(loads) > 0 and set(loads) <= {_version(i) for i in range(15)}


def test_failed_write_leaves_current_and_no_temp_dirs(tmp_path):
    artifact.publish(tmp_path, _version(1), _write(_version(1)))

    def broken(directory):
        (directory / "item_factors.npy").write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        artifact.publish(tmp_path, _version(2), broken)
    assert artifact.current_version(tmp_path) == _version(1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["CURRENT", _version(1)])


def test_prune_keeps_newest_and_current(tmp_path):
    for i in range(1, 6):
        artifact.publish(tmp_path, _version(i), _write(_version(i)), keep=10)
    artifact.set_current(tmp_path, _version(1))
    removed = artifact.prune(tmp_path, keep=2)
    assert set(removed) == {_version(2), _version(3)}
    assert [v["version"] for v in artifact.list_versions(tmp_path)] == [_version(5), _version(4), _version(1)]


def test_corrupt_or_missing_files_raise_artifact_error(tmp_path):
    path = artifact.publish(tmp_path, _version(1), _write(_version(1)))
    (path / "index.faiss").write_bytes(b"not an index")
    with pytest.raises(artifact.ArtifactError, match="cannot load"):
        artifact.load(path)
    (path / "gram.npy").unlink()
    with pytest.raises(artifact.ArtifactError, match="missing gram.npy"):
        artifact.load(path)
    with pytest.raises(artifact.ArtifactError, match="no published model"):
        artifact.load_current(tmp_path / "empty")


def test_an_index_of_another_size_than_the_manifest_says_is_refused(tmp_path):
    # A norm-head index holds a subset of the items; its size is in the manifest.
    with pytest.raises(artifact.ArtifactError, match="item counts disagree"):
        artifact.publish(tmp_path, _version(1), _write(_version(1), index_info={"head_items": 20}))
    assert artifact.current_version(tmp_path) is None and not (tmp_path / _version(1)).exists()


def test_models_of_the_previous_format_are_still_read(tmp_path):
    import orjson

    path = artifact.publish(tmp_path, _version(1), _write(_version(1)))
    manifest = orjson.loads((path / "manifest.json").read_bytes())
    for version, readable in ((1, True), (2, True), (artifact.FORMAT_VERSION, True), (99, False)):
        (path / "manifest.json").write_bytes(orjson.dumps({**manifest, "format_version": version}))
        if readable:
            assert artifact.load(path).index.ntotal == 50
        else:
            with pytest.raises(artifact.ArtifactError, match="format_version 99"):
                artifact.load(path)


def _neighbours(n_items: int) -> Neighbours:
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, n_items)
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    return Neighbours(indptr, rng.integers(0, n_items, indptr[-1]).astype(np.int32),
                      rng.normal(size=indptr[-1]).astype(np.float32))


def _write_itemitem(version: str, neighbours: Neighbours | None, itemitem: dict | None):
    serving = {"session_items": 120, "blend": {"foldin_weight": 0.5, "itemitem_weight": 0.5,
                                               "popularity_exponent": 0.1, "prior_c": 2.0}}
    model = {"family": "als+ease", **({"itemitem": itemitem} if itemitem else {})}
    return _write(version, extra={"serving": serving, "model": model}, neighbours=neighbours)


def test_item_item_neighbours_round_trip_memory_mapped(tmp_path):
    neighbours = _neighbours(50)
    artifact.publish(tmp_path, _version(1),
                     _write_itemitem(_version(1), neighbours, {"kind": "ease", "saturation": 1.0}))
    model = artifact.load_current(tmp_path)
    for name in ("indptr", "indices", "data"):
        got = getattr(model.neighbours, name)
        assert isinstance(got, np.memmap)
        np.testing.assert_array_equal(got, getattr(neighbours, name))
    assert model.manifest["format_version"] == artifact.FORMAT_VERSION == 3
    assert model.session_items == 120 and model.session_blend.prior_c == 2.0
    assert model.item_value_saturation == 1.0


def test_a_model_without_item_item_neighbours_loads_with_none(tmp_path):
    artifact.publish(tmp_path, _version(1), _write(_version(1)))
    model = artifact.load_current(tmp_path)
    assert model.neighbours is None
    # Older manifests (no serving section): the fold-in alone, the 50 recent items served before.
    assert model.session_blend.foldin_weight == 1.0 and model.session_blend.prior_c == 0.0
    assert model.session_items == 50


def test_neighbours_and_the_manifest_must_agree(tmp_path):
    with pytest.raises(artifact.ArtifactError, match="exactly when"):
        artifact.publish(tmp_path, _version(1), _write_itemitem(_version(1), _neighbours(50), None))
    with pytest.raises(artifact.ArtifactError, match="exactly when"):
        artifact.publish(tmp_path, _version(2), _write_itemitem(_version(2), None, {"kind": "ease"}))
    bad = _neighbours(50)
    bad.indices[0] = 50  # an item outside the model
    with pytest.raises(artifact.ArtifactError, match="outside the model"):
        artifact.publish(tmp_path, _version(3), _write_itemitem(_version(3), bad, {"kind": "ease"}))
    assert artifact.current_version(tmp_path) is None


def test_missing_or_corrupt_neighbour_files_refuse_the_version(tmp_path):
    write = _write_itemitem(_version(1), _neighbours(50), {"kind": "ease"})
    path = artifact.publish(tmp_path, _version(1), write)
    np.save(path / "neighbours.indptr.npy", np.arange(10, dtype=np.int64))  # another item count
    with pytest.raises(artifact.ArtifactError, match="do not match"):
        artifact.load(path)
    (path / "neighbours.data.npy").unlink()
    with pytest.raises(artifact.ArtifactError, match="missing neighbours.data.npy"):
        artifact.load(path)
