import csv

import numpy as np
import orjson
import pytest

from models import artifact
from models.repurchase import dueness, history
from training.campaign import export_campaign, segment_members
from training.config import TrainConfig
from training.pipeline import train
from training.synthetic import generate_store
from vitrine.cli import main

DAY = 86_400_000


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    store = generate_store(n_items=800, n_users=1200, n_events=250_000, days=365, seed=5,
                           customer_types=True)
    path = tmp_path_factory.mktemp("store")
    train(store.log, TrainConfig(store=path, evaluate=False, iterations=4, factors=16))
    return artifact.load_current(path)


def _rows(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_every_customer_of_the_segment_gets_k_servable_items(model, tmp_path):
    out = tmp_path / "vip.jsonl"
    result = export_campaign(model, "VIP", "email", 10, out, batch=64, progress=False)
    rows = _rows(out)
    seg = model.segments
    vip = {u for u, s in zip(seg["users"], seg["segment"], strict=True) if s == "vip"}
    assert result.customers == result.written == len(rows) == len(vip) > 0
    assert {r["user_id"] for r in rows} == vip and {r["segment"] for r in rows} == {"vip"}
    rep, now = model.repurchase, seg["as_of_ms"]
    for r in rows:
        items = [model.item_index[i] for i in r["items"]]
        assert len(set(items)) == 10 and model.items.in_stock[items].all()
        bought = dict(history(rep, model.user_index[r["user_id"]]))
        for i in set(items) & set(bought):  # only consumables due again come back
            assert model.items.consumable[i]
            assert dueness(bought[i], float(rep["cycle_days"][i]), now) >= 0.8


def test_batched_search_returns_the_exact_top_k_after_filters(model, tmp_path):
    out = tmp_path / "loyal.jsonl"
    export_campaign(model, "loyal", "email", 5, out, batch=100, progress=False)
    rep, now = model.repurchase, model.segments["as_of_ms"]
    for r in _rows(out)[:50]:
        row = model.user_index[r["user_id"]]
        scores = model.item_factors @ model.user_factors[row]
        banned = {i for i, ts in history(rep, row)
                  if not model.items.consumable[i] or dueness(ts, float(rep["cycle_days"][i]), now) < 0.8}
        allowed = [i for i in np.argsort(-scores, kind="stable")
                   if model.items.in_stock[i] and i not in banned]
        assert np.allclose(np.sort(scores[[model.item_index[i] for i in r["items"]]]),
                           np.sort(scores[allowed[:5]]), atol=1e-5)


def test_segment_members_follow_the_rules_at_the_given_time(model):
    members, name = segment_members(model, "lost", model.segments["as_of_ms"])
    later, _ = segment_members(model, "lost", model.segments["as_of_ms"] + 400 * DAY)
    assert name == "lost" and members.size < later.size  # a year on, most have lapsed
    prospects, _ = segment_members(model, "prospect", model.segments["as_of_ms"])
    assert not set(prospects) & {model.user_index[u] for u in model.segments["users"]}
    with pytest.raises(ValueError, match="unknown segment 'gold'.*vip"):
        segment_members(model, "gold", 0)


def test_buy_again_placement_lists_due_items_as_csv(model, tmp_path):
    out = tmp_path / "due.csv"
    result = export_campaign(model, "all", "buy_again", 3, out, progress=False)
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert 0 < result.written == len(rows) < result.customers
    rep, now = model.repurchase, model.segments["as_of_ms"]
    for r in rows:
        bought = dict(history(rep, model.user_index[r["user_id"]]))
        for item in filter(None, (r["item_1"], r["item_2"], r["item_3"])):
            i = model.item_index[item]
            assert 0.8 <= dueness(bought[i], float(rep["cycle_days"][i]), now) <= 1.2


def test_cli_campaign(model, tmp_path, capsys):
    store = model.path.parent
    assert main(["campaign", "--segment", "at risk", "--k", "4", "--out", str(tmp_path / "r.jsonl"),
                 "--store", str(store), "--no-progress"]) == 0
    assert "customers/min" in capsys.readouterr().out
    assert all(len(r["items"]) == 4 for r in _rows(tmp_path / "r.jsonl"))
    assert main(["campaign", "--segment", "vip", "--out", str(tmp_path / "r.txt"),
                 "--store", str(store)]) == 2
    assert "unknown format" in capsys.readouterr().err
