"""An artifact's item categories load as int32 codes into their sorted names, and read as the
list they were written from: what the trainer wrote is what the server and the tools see."""

import numpy as np

from models import artifact
from models.coded import CodedStrings
from models.foldin import gram_matrix


def test_categories_load_as_codes_and_read_as_written(tmp_path):
    import faiss

    n, k = 7, 3
    written = ["shoes", None, "bags", "shoes", "hats", None, "bags"]
    y = np.random.default_rng(0).normal(size=(n, k)).astype(np.float32)
    index = faiss.IndexFlatIP(k)
    index.add(y)
    version = "20260101T000000Z-00000001"
    artifact.publish(tmp_path, version, lambda d: artifact.write_artifact(
        d, manifest={"version": version, "created": "2026-01-01T00:00:00+00:00", "counts": {},
                     "params": {"event_weights": {"view": 1.0}, "regularization": 0.05, "alpha": 1.0}},
        items=artifact.ItemMeta(ids=[f"i{i}" for i in range(n)], category=written, price=np.ones(n),
                                in_stock=np.ones(n, bool), consumable=np.zeros(n, bool)),
        item_factors=y, user_ids=["u"], user_factors=np.zeros((1, k), np.float32),
        popularity=np.ones(n, np.float32), gram=gram_matrix(y), index=index))

    category = artifact.load_current(tmp_path).items.category
    assert isinstance(category, CodedStrings)
    assert category.names == ["bags", "hats", "shoes"] and category.codes.tolist() == [2, -1, 0, 2, 1, -1, 0]
    assert list(category) == written and category == written and len(category) == n
    assert category[3] == "shoes" and category[-1] == "bags" and category[1] is None
    assert category[2:5] == ["bags", "shoes", "hats"]
    assert sorted({c for c in category if c}) == ["bags", "hats", "shoes"]


def test_a_loaded_artifacts_customer_columns_are_arrays_that_write_back_as_written(tmp_path):
    from models.artifact import _columns, _pack, _unpack

    written = {"format": 2, "as_of_ms": 5, "users": ["u0", "u1", "u2"], "windows_days": [180, 365],
               "orders": [2, 1, 7], "spend": [30.0, 900.0, 12.5], "churn_probability": [0.1, None, 0.9],
               "segment": ["vip", "lost", "vip"], "rules": {"rfm": {"window_days": 365}}}
    loaded = _columns(written)
    assert loaded["orders"].dtype == np.int64 and loaded["spend"].dtype == np.float64
    assert np.isnan(loaded["churn_probability"][1]) and loaded["churn_probability"][2] == 0.9
    assert isinstance(loaded["segment"], CodedStrings) and loaded["segment"][2] == "vip"
    assert loaded["users"] == written["users"] and loaded["windows_days"] == [180, 365]
    _pack(tmp_path / "s.msgpack", loaded)
    again = _unpack(tmp_path / "s.msgpack")
    assert again["orders"] == [2, 1, 7] and again["segment"] == ["vip", "lost", "vip"]
    assert again["churn_probability"][0] == 0.1 and again["rules"] == written["rules"]
