"""The live-session fold-in: reused for the placements of one page view, redone as
soon as the session changes or the reuse window has passed."""

from dataclasses import replace

import msgspec
import numpy as np
import pytest

from models import artifact
from models.foldin import gram_matrix
from server.recommend.caches import Caches
from server.recommend.ladder import recommend
from server.recommend.model import ServingModel
from server.recommend.retrieval import Query
from server.settings import RecommendSettings
from server.store.records import LiveSession
from training.index import build_index

NOW = 1_790_000_000_000


@pytest.fixture
def model(tmp_path) -> ServingModel:
    rng = np.random.default_rng(3)
    n, k = 2_000, 16
    items = rng.normal(size=(n, k)).astype(np.float32)
    users = rng.normal(size=(50, k)).astype(np.float32)
    index, info = build_index(items, users, exact_max_items=10**6, target_recall=0.95)
    version = "20260101T000000Z-00000001"

    def write(directory):
        artifact.write_artifact(
            directory,
            manifest={"version": version, "index": info.as_dict(), "created": "2026-01-01T00:00:00+00:00",
                      "counts": {},
                      "params": {"event_weights": {"view": 1.0, "add_to_cart": 4.0, "purchase": 10.0},
                                 "regularization": 0.05, "alpha": 2.0}},
            items=artifact.ItemMeta(ids=[f"i{i}" for i in range(n)],
                                    category=[f"c{i % 8}" for i in range(n)], price=np.ones(n),
                                    in_stock=np.ones(n, bool), consumable=np.zeros(n, bool)),
            item_factors=items, user_ids=[f"u{i}" for i in range(50)], user_factors=users,
            popularity=np.arange(n, dtype=np.float32), gram=gram_matrix(items), index=index)

    artifact.publish(tmp_path, version, write)
    return ServingModel.from_artifact(artifact.load_current(tmp_path))


@pytest.fixture
def caches(model) -> Caches:
    return Caches(model)


@pytest.fixture
def solves(model, monkeypatch) -> list:
    calls: list = []
    real = model.foldin.solve
    monkeypatch.setattr(model.foldin, "solve", lambda idx, w: calls.append(idx.tolist()) or real(idx, w))
    return calls


def _session(*items: tuple[str, str, int]) -> LiveSession:
    return LiveSession(items=list(items))


def _rank(model, caches, q, live, cfg=None):
    return recommend(model, caches, q, live, None, cfg or RecommendSettings())


def test_the_placements_of_one_page_view_share_one_fold_in(model, caches, solves):
    live = _session(("i1", "view", NOW - 1_000), ("i2", "view", NOW - 60_000),
                    ("i3", "add_to_cart", NOW - 90_000))
    home = Query("home", None, "s1", 5, NOW)
    first = _rank(model, caches, home, live)
    again = _rank(model, caches, replace(home, now_ms=NOW + 400), live)
    product = _rank(model, caches, replace(home, placement="product", context_items=["i9"], now_ms=NOW + 450),
                    live)
    assert len(solves) == 1
    assert again.items == first.items and again.rung == "session"
    assert product.items != first.items  # the page's item still moves the query
    no_reuse = msgspec.structs.replace(RecommendSettings(), session_reuse_ms=0)
    fresh = _rank(model, caches, replace(home, now_ms=NOW + 400), live, no_reuse)
    assert len(solves) == 2 and fresh.items == again.items


def test_a_new_event_an_elapsed_window_or_another_shopper_fold_in_again(model, caches, solves):
    cfg = RecommendSettings()
    q = Query("home", None, "s1", 5, NOW)
    live = _session(("i1", "view", NOW - 1_000), ("i2", "view", NOW - 60_000))
    _rank(model, caches, q, live)
    newer = _session(("i7", "view", NOW + 100), *live.items)
    _rank(model, caches, replace(q, now_ms=NOW + 200), newer)
    assert solves[-1] == [7, 1, 2]
    _rank(model, caches, replace(q, now_ms=NOW + 200 + cfg.session_reuse_ms + 1), newer)
    _rank(model, caches, replace(q, session_id="s2", now_ms=NOW + 300), newer)
    assert len(solves) == 4


def test_reasons_name_the_newest_event_of_an_item_seen_twice(model, caches):
    live = _session(("i5", "add_to_cart", NOW - 1_000), ("i5", "view", NOW - 50_000))
    ranked = _rank(model, caches, Query("home", None, "s1", 5, NOW), live)
    assert ranked.reasons == ["because you added to your cart i5"] * 5


def test_the_session_memo_is_bounded_by_its_setting(model, caches):
    cfg = msgspec.structs.replace(RecommendSettings(), session_reuse_entries=16)
    sizes = []
    for n in range(100):
        live = _session((f"i{n}", "view", NOW - 1_000), (f"i{n + 1}", "view", NOW - 2_000))
        _rank(model, caches, Query("home", None, f"s{n}", 5, NOW), live, cfg)
        sizes.append(len(caches.sessions))
    assert max(sizes) == 16  # filled to the setting, then emptied: never more
