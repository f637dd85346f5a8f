"""ItemsView: the model's items with the live catalog over them, kept current per change."""

import pytest

from models.catalog import ItemRecord
from server.catalog.view import ItemsView
from tests.server.small_model import N_ITEMS, small_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("model"))


def test_records_override_the_models_metadata_and_clearing_restores_it(model):
    view = ItemsView(model, {"i5": ItemRecord(in_stock=False, price=9.5, category="c3", brand="acme")})
    i = view.index_of("i5")
    assert not view.available[i] and view.visible[i] and view.price[i] == 9.5
    assert view.category_of(i) == "c3" and view.brands[view.brand[i]] == "acme"
    assert view.pool(view.category_code["c3"]).tolist().count(i) == 1  # moved between pools
    assert i not in view.pool(view.category_code["c5"]).tolist()
    view.apply({"i5": None}, seq=1)
    assert view.available[i] and view.category_of(i) == "c5" and view.price[i] == model.art.items.price[i]
    assert view.brand[i] == -1 and i in view.pool(view.category_code["c5"]).tolist()


def test_new_items_get_rows_after_the_models_and_new_categories_codes(model):
    view = ItemsView(model)
    view.apply({"n1": ItemRecord(category="new/shelf", tags=["summer"]), "n2": ItemRecord(hidden=True)},
               seq=1)
    i = view.index_of("n1")
    assert i == N_ITEMS and view.id_of(i) == "n1" and view.n_items == N_ITEMS + 1
    assert view.category_of(i) == "new/shelf" and view.available[i] and view.tags_of(i) == ("summer",)
    assert view.index_of("n2") is None  # hidden before it was ever shown: not added
    view.apply({f"m{n}": ItemRecord(price=1.0) for n in range(3_000)}, seq=2)  # grows the arrays
    assert view.available[view.index_of("m2999")] and view.hidden.size >= view.n_items
    view.apply({"n1": None}, seq=3)  # no longer catalogued: gone from answers
    assert not view.available[i] and not view.visible[i]


def test_consumers_catch_up_from_the_changed_rows(model):
    view = ItemsView(model)
    version = view.version
    view.apply({"i1": ItemRecord(in_stock=False)}, seq=1)
    view.apply({"i2": ItemRecord(price=1.0), "nope": None}, seq=2)
    assert view.changed_since(version).tolist() == [1, 2]
    assert view.changed_since(view.version).size == 0
    for n in range(5_000):
        view.apply({"i3": ItemRecord(price=float(n))}, seq=3 + n)
    assert view.changed_since(version) is None  # too far behind: rebuild
