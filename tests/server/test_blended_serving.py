"""A model whose manifest chose a blend (ALS fold-in + item-item neighbours + popularity prior)
is served as the trainer evaluated it: the same ranking through HTTP as offline."""

from dataclasses import replace

import numpy as np
import pytest

from models import artifact
from models.ranking import SessionBlend
from server.app import create_app
from tests.server.conftest import event, make_settings
from training.config import TrainConfig
from training.pipeline import train
from training.recommender import ModelSpec, saturation_of, session_model_of
from training.search import SearchResult

BLEND = SessionBlend(foldin_weight=0.5, popularity_exponent=0.1, prior_c=1.0, prior_power=1.0)
NEUTRAL = {"recommend.affinity_weight": 0.0, "recommend.max_category_share": 1.0}


@pytest.fixture(scope="module")
def blended_store(tmp_path_factory, synthetic_store):
    """The trainer's pipeline publishing a fixed blend (as a search would), without the search."""
    config = TrainConfig(store=tmp_path_factory.mktemp("blended"), evaluate=False, search="off")
    spec = ModelSpec(factors=32, regularization=0.5, alpha=1.0, iterations=10, ease_lambda=50.0,
                     neighbours=50, saturation=saturation_of(config.event_weights), blend=BLEND)
    chosen = SearchResult(spec=spec, session_items=100, record={"mode": "test"})
    train(synthetic_store.log, config, chosen=chosen)
    return config.store


@pytest.fixture(scope="module")
def blended(blended_store):
    return artifact.load_current(blended_store)


def offline_ranking(art, rows: list[int], weights: list[float], depth: int,
                    blend: SessionBlend | None = None) -> list[str]:
    """The trainer's evaluation ranking (training.recommender.SessionModel) for one session."""
    model = session_model_of(art)
    if blend is not None:
        model = model.with_blend(blend)
    ranked = model.rank([np.array(rows)], [np.array(weights)], [np.array(rows)], depth)[0]
    return [art.items.ids[i] for i in ranked if i >= 0]


def test_manifest_records_the_blend(blended):
    m = blended.manifest
    assert m["model"]["family"] == "als+ease"
    assert m["model"]["itemitem"]["neighbours"] == 50
    assert m["serving"]["blend"]["foldin_weight"] == 0.5
    assert m["serving"]["session_items"] == 100
    assert m["search"]["reused"] is True
    assert blended.neighbours is not None and blended.neighbours.indices.size > 0


async def test_session_served_as_evaluated_offline(aiohttp_client, blended_store, blended, redis_url,
                                                   tmp_path):
    settings = make_settings(blended_store, redis_url, tmp_path, **NEUTRAL)
    client = await aiohttp_client(create_app(settings))
    in_stock = np.flatnonzero(np.asarray(blended.items.in_stock) & (np.asarray(blended.popularity) > 0))
    weight = blended.event_weights["purchase"]
    rng = np.random.default_rng(0)
    for session, n in (("one", 1), ("two", 2), ("eight", 8)):
        rows = [int(r) for r in rng.choice(in_stock, size=n, replace=False)]
        events = [event(f"{session}-{i}", blended.items.ids[r], type="purchase", session_id=session)
                  for i, r in enumerate(rows)]
        assert (await client.post("/v1/events", json={"events": events})).status == 200
        body = await (await client.get("/v1/recommendations", params={"session_id": session, "k": 20})).json()
        served = [x["item_id"] for x in body["items"]]
        # The server's depth (candidates + excluded items), then what it never shows (out of stock).
        offline = offline_ranking(blended, rows, [weight] * n, settings.recommend.candidates)
        offline = [i for i in offline if blended.items.in_stock[blended.item_index[i]]][:20]
        assert served == offline, session


async def test_one_event_session_leans_on_popularity(aiohttp_client, blended_store, blended, redis_url,
                                                     tmp_path):
    """With the prior, a 1-event session shares more of its list with the popularity list than
    the same session ranked by the model alone (c = 0): the prior is served, not just recorded."""
    client = await aiohttp_client(create_app(make_settings(blended_store, redis_url, tmp_path, **NEUTRAL)))
    popularity = np.asarray(blended.popularity)
    popular = {blended.items.ids[i] for i in np.argsort(-popularity, kind="stable")[:40]}
    # A rarely bought item: the model alone ranks its few co-buyers' items, far from the head.
    rare = np.flatnonzero(np.asarray(blended.items.in_stock) & (popularity > 0))
    tail = int(rare[np.argmin(popularity[rare])])
    item = blended.items.ids[tail]
    one = [event("p1", item, type="purchase", session_id="p")]
    posted = await client.post("/v1/events", json={"events": one})
    assert posted.status == 200
    served = [x["item_id"] for x in (await (await client.get(
        "/v1/recommendations", params={"session_id": "p", "k": 20})).json())["items"]]
    weight = blended.event_weights["purchase"]
    alone = offline_ranking(blended, [tail], [weight], 200, blend=replace(BLEND, prior_c=0.0))[:20]
    assert len(popular & set(served)) > len(popular & set(alone))


async def test_similar_items_use_the_neighbours(aiohttp_client, blended_store, blended, redis_url, tmp_path):
    """An item's strongest in-stock neighbour (EASE) is among its similar items."""
    client = await aiohttp_client(create_app(make_settings(blended_store, redis_url, tmp_path, **NEUTRAL)))
    nb, in_stock = blended.neighbours, np.asarray(blended.items.in_stock)
    checked = 0
    for row in np.argsort(-np.asarray(blended.popularity), kind="stable")[:10]:
        start, end = nb.indptr[row], nb.indptr[row + 1]
        cands = [(w, j) for w, j in zip(nb.data[start:end], nb.indices[start:end], strict=True)
                 if in_stock[j] and j != row]
        if not cands:
            continue
        best = blended.items.ids[max(cands)[1]]
        resp = await client.get(f"/v1/items/{blended.items.ids[row]}/similar", params={"k": 10})
        body = await resp.json()
        assert best in [x["item_id"] for x in body["items"]]
        checked += 1
    assert checked >= 5


async def test_a_short_sessions_category_affinity_is_trusted_as_much_as_the_model_trusts_it(
        aiohttp_client, blended_store, blended, redis_url, tmp_path):
    """The live category re-rank of a searched model's session is scaled by 1 − the prior's
    weight: a 1-event session's category (c = 1: weight 1/2) adds half the setting, and the
    weight grows toward the setting as the session does."""
    client = await aiohttp_client(create_app(make_settings(blended_store, redis_url, tmp_path)))
    in_stock = np.flatnonzero(np.asarray(blended.items.in_stock) & (np.asarray(blended.popularity) > 0))
    rows = [int(r) for r in in_stock[:9]]
    first = blended.items.ids[rows[0]]
    category = blended.items.category[rows[0]]

    async def affinity_of_category(session: str) -> float:
        body = await (await client.get("/v1/admin/explain", params={"session_id": session, "k": 20})).json()
        parts = [x["parts"] for x in body["items"]
                 if blended.items.category[blended.item_index[x["item_id"]]] == category and x["parts"]]
        assert parts and body["answer"]["rung"] == "session"
        return max(p["affinity"] for p in parts)

    one = [event("a1", first, type="purchase", session_id="short", category=category)]
    assert (await client.post("/v1/events", json={"events": one})).status == 200
    # Every event on one category: its share of the affinities is 1.
    assert await affinity_of_category("short") == pytest.approx(0.25 * (1 - 1 / (1 + 1)), rel=1e-4)
    nine = [event(f"b{n}", blended.items.ids[r], type="purchase", session_id="long", category=category)
            for n, r in enumerate(rows)]
    assert (await client.post("/v1/events", json={"events": nine})).status == 200
    assert await affinity_of_category("long") == pytest.approx(0.25 * (1 - 1 / (1 + 9)), rel=1e-4)
